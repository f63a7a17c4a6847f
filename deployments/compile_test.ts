import assert from "node:assert/strict";
import { compileArgs, ENTRY_POINTS, outputPath, TARGETS } from "./compile.ts";
import { type Binary, permissionFlags } from "./permissions.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The value after `flag` in `args`. */
function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

Deno.test("compile: one command per binary and architecture, named <binary>-<arch>", () => {
  for (const binary of ["qarax", "qarax-node"] as Binary[]) {
    for (const [arch, target] of Object.entries(TARGETS)) {
      const args = compileArgs({
        binary,
        arch: arch as keyof typeof TARGETS,
        outDir: "/out",
        buildInfo: "/out/build_info.js",
      });
      assert.equal(args[0], "compile");
      assert.equal(valueOf(args, "--target"), target);
      assert.equal(valueOf(args, "--output"), `/out/${binary}-${arch}`);
      assert.equal(valueOf(args, "--preload"), "/out/build_info.js");
      assert.equal(args.at(-1), `${ROOT}${ENTRY_POINTS[binary]}`);
      assert.ok(args.includes("--frozen"));
      assert.ok(args.includes("--unstable-raw-imports"), "PGlite's files are byte imports");
    }
  }
  assert.equal(outputPath("dist", "qarax-node", "aarch64"), "dist/qarax-node-aarch64");
  assert.deepEqual(Object.values(TARGETS), [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
  ]);
});

Deno.test("compile: the binary gets exactly its permission set, never -A", () => {
  for (const binary of ["qarax", "qarax-node"] as Binary[]) {
    const args = compileArgs({ binary, arch: "x86_64", outDir: "d", buildInfo: "d/b.js" });
    const granted = args.filter((a) => /^--allow-|^-A$|^--deny-/.test(a));
    assert.deepEqual(granted, permissionFlags(binary));
    assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
  }
  const node = compileArgs({ binary: "qarax-node", arch: "x86_64", outDir: "d", buildInfo: "b" });
  assert.ok(node.includes("--allow-ffi"));
  const control = compileArgs({ binary: "qarax", arch: "x86_64", outDir: "d", buildInfo: "b" });
  assert.ok(!control.some((a) => a.startsWith("--allow-ffi")));
});

Deno.test("compile: the tasks, the image and the units agree on the binaries' names", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  assert.equal(tasks["compile:control"], "deno run -A deployments/compile.ts qarax");
  assert.equal(tasks["compile:node"], "deno run -A deployments/compile.ts qarax-node");
  for (const [unit, binary] of [["qarax.service", "qarax"], ["qarax-node.service", "qarax-node"]]) {
    const text = await Deno.readTextFile(`${ROOT}deployments/systemd/${unit}`);
    const exec = /^ExecStart=(\S+)/m.exec(text)?.[1] ?? "";
    assert.equal(exec.split("/").at(-1), binary, `${unit} runs ${binary}`);
  }
  const image = await Deno.readTextFile(`${ROOT}deployments/Containerfile`);
  assert.ok(image.includes('deno task compile:node --arch "$(uname -m)"'));
  assert.ok(image.includes(`"${outputPath("dist", "qarax-node", "$(uname -m)" as "x86_64")}"`));
});

Deno.test("compile: deployments/README.md's bundle wrappers pass exactly the permissions", async () => {
  const text = (await Deno.readTextFile(`${ROOT}deployments/README.md`)).replace(/\\\n\s*/g, "");
  for (const binary of ["qarax", "qarax-node"] as Binary[]) {
    const line = new RegExp(`^exec deno run (.*) /usr/local/lib/qarax/${binary}\\.js "\\$@"$`, "m")
      .exec(text);
    assert.ok(line, `a wrapper for ${binary}`);
    assert.deepEqual(line[1].split(/\s+/), ["--no-prompt", ...permissionFlags(binary)]);
  }
});
