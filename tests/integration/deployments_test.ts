/**
 * The host deployment files hold together: every file the Containerfile copies exists, the
 * paths the image installs are the paths the unit and the default config use, the systemd
 * units parse (`systemd-analyze verify`, syntax problems only), tmpfiles and sysctl files are
 * valid, both default configs load, and the pinned-download script verifies its sha256 sums.
 */
import assert from "node:assert/strict";
import { loadConfig, loadNodeConfig } from "../../shared/config/load.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const DEPLOY = `${ROOT}deployments`;
const CI = Deno.env.get("CI") === "true";

// ---- Containerfile ----------------------------------------------------------------------

/** One COPY/ADD: its sources (build-context paths), destination and `--from` stage. */
interface Copy {
  line: number;
  sources: string[];
  dest: string;
  from?: string;
}

/** The COPY/ADD instructions and stage names of a Containerfile (continuations joined). */
function parseContainerfile(text: string): { copies: Copy[]; stages: string[] } {
  const copies: Copy[] = [];
  const stages: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i];
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, " ") + lines[++i];
    }
    const m = /^\s*(COPY|ADD|FROM)\s+(.*)$/i.exec(line);
    if (!m) continue;
    if (m[1].toUpperCase() === "FROM") {
      const as = /\s+AS\s+(\S+)\s*$/i.exec(m[2]);
      if (as) stages.push(as[1]);
      continue;
    }
    let words: string[];
    const rest = m[2].trim();
    const flags = rest.match(/^(--\S+\s+)*/)![0];
    const body = rest.slice(flags.length);
    words = body.startsWith("[") ? JSON.parse(body) : body.split(/\s+/);
    words = words.filter(Boolean);
    const from = /--from=(\S+)/.exec(flags)?.[1];
    copies.push({ line: start, sources: words.slice(0, -1), dest: words[words.length - 1], from });
  }
  return { copies, stages };
}

/** Problems with a Containerfile's copies: missing sources, unknown stages, escapes. */
async function copyProblems(text: string, context: string): Promise<string[]> {
  const { copies, stages } = parseContainerfile(text);
  const problems: string[] = [];
  for (const c of copies) {
    if (c.sources.length === 0) problems.push(`line ${c.line}: COPY without a source`);
    if (c.from !== undefined) {
      if (!stages.includes(c.from)) problems.push(`line ${c.line}: unknown stage ${c.from}`);
      continue;
    }
    for (const src of c.sources) {
      if (src.startsWith("/") || src.split("/").includes("..") || /[*?[]/.test(src)) {
        problems.push(`line ${c.line}: ${src} must be a plain path inside the build context`);
        continue;
      }
      try {
        const info = await Deno.stat(`${context}/${src.replace(/\/+$/, "")}`);
        if (src.endsWith("/") && !info.isDirectory) {
          problems.push(`line ${c.line}: ${src} is not a directory`);
        }
      } catch {
        problems.push(`line ${c.line}: ${src} does not exist`);
      }
    }
  }
  return problems;
}

Deno.test("every file the Containerfile copies exists in the repository", async () => {
  const text = await Deno.readTextFile(`${DEPLOY}/Containerfile`);
  assert.deepEqual(await copyProblems(text, ROOT), []);
  // The check finds what is wrong.
  const broken = `FROM base AS build
COPY deno.json \\
     missing.txt /src/
COPY --from=nope /x /y
COPY ["deployments/host/node.yaml", "/etc/qarax/node.yaml"]
ADD ../secret /z
COPY deno.json/ /a/`;
  assert.deepEqual(await copyProblems(broken, ROOT), [
    "line 2: missing.txt does not exist",
    "line 4: unknown stage nope",
    "line 6: ../secret must be a plain path inside the build context",
    "line 7: deno.json/ is not a directory",
  ]);
});

Deno.test("the image installs what the unit and the default config point at", async () => {
  const { copies } = parseContainerfile(await Deno.readTextFile(`${DEPLOY}/Containerfile`));
  const dest = (source: string) => copies.find((c) => c.sources.includes(source))?.dest;
  const unit = await Deno.readTextFile(`${DEPLOY}/systemd/qarax-node.service`);
  const execStart = /^ExecStart=(\S+) --config (\S+)$/m.exec(unit);
  assert.ok(execStart, "ExecStart=<binary> --config <file>");
  assert.equal(dest("/src/dist/qarax-node"), execStart[1]);
  assert.equal(dest("deployments/host/node.yaml"), execStart[2]);
  assert.equal(
    dest("deployments/systemd/qarax-node.service"),
    "/usr/lib/systemd/system/qarax-node.service",
  );

  // The example env files name real settings (a typo would be refused by the loader).
  const nodeEnv = await envFile(`${DEPLOY}/host/node.env.example`, "node-token");
  assert.deepEqual(Object.keys(nodeEnv), ["QARAX_NODE__AUTH_TOKEN", "QARAX_NODE__METRICS_TOKEN"]);
  const { config } = loadNodeConfig({
    configFile: `${DEPLOY}/host/node.yaml`,
    env: { APP_ENVIRONMENT: "production", ...nodeEnv },
  });
  assert.equal(config.node.auth_token, "node-token");
  assert.equal(config.node.cloud_hypervisor_binary, dest("/out/cloud-hypervisor"));
  assert.equal(`${config.node.firmware_dir}/`, dest("/out/firmware/"));
  assert.equal(config.node.require_auth, true);
  assert.equal(config.node.metrics_listen, "127.0.0.1:9101");
  // VMs must survive the agent: a restart may only signal the agent itself.
  assert.match(unit, /^KillMode=process$/m);
  assert.match(unit, /^Restart=always$/m);
  assert.match(unit, /^EnvironmentFile=\/etc\/qarax\/node\.env$/m);

  const control = loadConfig({
    configFile: `${DEPLOY}/control/qarax.yaml`,
    env: {
      APP_ENVIRONMENT: "production",
      ...await envFile(`${DEPLOY}/control/qarax.env.example`, "node-token"),
    },
  });
  assert.equal(control.config.auth.enabled, true);
  assert.equal(control.config.metrics.public, false);
  assert.equal(control.config.nodes.auth_token, "node-token");
});

/** `KEY=VALUE` lines of an env file; empty values become `fill`. */
async function envFile(path: string, fill: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2] || fill;
  }
  return out;
}

// ---- systemd units -----------------------------------------------------------------------

async function has(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output())
      .success;
  } catch {
    return false;
  }
}

/** Tools the checks below need: present, or (outside CI) the check says why it did not run. */
async function tool(cmd: string): Promise<boolean> {
  if (await has(cmd)) return true;
  if (CI) throw new Error(`${cmd} is required in CI`);
  console.warn(`${cmd} is not installed: check not run`);
  return false;
}

/**
 * Syntax problems `systemd-analyze verify` finds in `units` (file → text). They are verified
 * in a scratch root with stub executables, so the host's own state (missing binaries, targets
 * a container lacks) cannot fail them; only lines that point into a unit file (`file:line:`)
 * or a unit that did not load count.
 */
async function unitProblems(units: Record<string, string>): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "qarax-units-" });
  try {
    await Deno.mkdir(`${root}/etc/systemd/system`, { recursive: true });
    for (const [name, text] of Object.entries(units)) {
      await Deno.writeTextFile(`${root}/etc/systemd/system/${name}`, text);
      for (const m of text.matchAll(/^Exec\w+=[-@+!:]*(\/\S+)/gm)) {
        const stub = `${root}${m[1]}`;
        await Deno.mkdir(stub.slice(0, stub.lastIndexOf("/")), { recursive: true });
        await Deno.writeTextFile(stub, "#!/bin/sh\n", { mode: 0o755 });
      }
    }
    const out = await new Deno.Command("systemd-analyze", {
      args: [
        "verify",
        "--man=no",
        "--generators=no",
        "--recursive-errors=no",
        `--root=${root}`,
        ...Object.keys(units),
      ],
      env: { SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.split("\n").filter((l) =>
      /^\S+\.(service|socket|timer|target):\d+: /.test(l) || /failed to load properly/.test(l)
    ).map((l) => l.replace(`${root}/etc/systemd/system/`, ""));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("the systemd units parse (systemd-analyze verify)", async () => {
  if (!await tool("systemd-analyze")) return;
  const units: Record<string, string> = {};
  for (const name of ["qarax-node.service", "qarax.service"]) {
    units[name] = await Deno.readTextFile(`${DEPLOY}/systemd/${name}`);
  }
  assert.deepEqual(await unitProblems(units), []);
  // A real syntax error fails: a bad value, an unknown key, a broken section header.
  const broken = units["qarax-node.service"]
    .replace("KillMode=process", "KillMode=nonsense")
    .replace("Restart=always", "Restart=always\nRestartt=always")
    .replace("[Install]", "[Install");
  const problems = await unitProblems({ "qarax-node.service": broken });
  assert.equal(problems.length, 4, problems.join("\n"));
  assert.match(problems[0], /^qarax-node\.service:\d+: Failed to parse kill mode specification/);
  assert.match(problems[1], /Unknown key 'Restartt'|Unknown key name 'Restartt'/);
  assert.match(problems[2], /Invalid section header '\[Install'/);
  assert.match(problems[3], /failed to load properly/);
});

Deno.test("tmpfiles.d and sysctl.d files are valid", async () => {
  const tmpfiles = `${DEPLOY}/host/tmpfiles.conf`;
  if (await tool("systemd-tmpfiles")) {
    const root = await Deno.makeTempDir({ prefix: "qarax-tmpfiles-" });
    try {
      const run = (file: string) =>
        new Deno.Command("systemd-tmpfiles", {
          args: [`--root=${root}`, "--create", file],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const out = await run(tmpfiles);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal((await Deno.stat(`${root}/var/lib/qarax/vms`)).mode! & 0o777, 0o750);
      assert.equal((await Deno.stat(`${root}/var/lib/qarax/node`)).mode! & 0o777, 0o700);
      // ...and the check notices a broken line.
      await Deno.writeTextFile(`${root}/bad.conf`, "d var/lib/relative 0750 root root -\n");
      assert.notEqual((await run(`${root}/bad.conf`)).code, 0);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  // sysctl.d: `[-]key = value`; keys without "-" must exist on any Linux host.
  for (const raw of (await Deno.readTextFile(`${DEPLOY}/host/sysctl.conf`)).split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(-?)([a-z0-9_.-]+)\s*=\s*(\S.*)$/.exec(line);
    assert.ok(m, `sysctl line: ${line}`);
    if (m[1] === "" && Deno.build.os === "linux") {
      await Deno.stat(`/proc/sys/${m[2].replaceAll(".", "/")}`).catch(() => {
        throw new Error(`sysctl key ${m[2]} does not exist`);
      });
    }
  }
  for (const raw of (await Deno.readTextFile(`${DEPLOY}/host/modules-load.conf`)).split("\n")) {
    const line = raw.trim();
    if (line && !line.startsWith("#")) assert.match(line, /^[a-z0-9_]+$/, `module: ${line}`);
  }
});

// ---- pinned downloads ----------------------------------------------------------------------

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("pinned.sh downloads, checks sha256 sums, and refuses unset or wrong ones", async () => {
  if (!await tool("curl")) return;
  // A mirror of the release paths with stand-in files.
  const files: Record<string, string> = {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const name = path.slice(path.lastIndexOf("/") + 1);
    files[path] = `stand-in ${name}\n`;
    return new Response(files[path]);
  });
  const dir = await Deno.makeTempDir({ prefix: "qarax-pins-" });
  try {
    const pins = `${dir}/versions.env`;
    await Deno.copyFile(`${DEPLOY}/host/versions.env`, pins);
    const run = async (...args: string[]) => {
      const out = await new Deno.Command("sh", {
        args: [`${DEPLOY}/host/pinned.sh`, ...args],
        env: { PINS: pins, PINNED_MIRROR: `http://127.0.0.1:${server.addr.port}` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
    };
    // Unset sums stop the build before anything is trusted.
    const unset = await run("fetch", `${dir}/out`, "amd64");
    assert.notEqual(unset.code, 0);
    assert.match(unset.text, /CLOUD_HYPERVISOR_SHA256_amd64 is not set/);

    const update = await run("update");
    assert.equal(update.code, 0, update.text);
    const written = await Deno.readTextFile(pins);
    const chPath = Object.keys(files).find((p) => p.endsWith("/cloud-hypervisor-static"))!;
    assert.match(chPath, /\/cloud-hypervisor\/cloud-hypervisor\/releases\/download\/v\d+\.\d+\//);
    assert.ok(written.includes(`CLOUD_HYPERVISOR_SHA256_amd64=${await sha256(files[chPath])}`));
    assert.doesNotMatch(written, /=UNSET/);

    const ok = await run("fetch", `${dir}/out`, "amd64");
    assert.equal(ok.code, 0, ok.text);
    assert.equal(
      await Deno.readTextFile(`${dir}/out/cloud-hypervisor`),
      "stand-in cloud-hypervisor-static\n",
    );
    assert.equal((await Deno.stat(`${dir}/out/cloud-hypervisor`)).mode! & 0o777, 0o755);
    await Deno.stat(`${dir}/out/firmware/CLOUDHV.fd`);
    await Deno.stat(`${dir}/out/firmware/hypervisor-fw`);

    // A download that does not match its pin is refused.
    await Deno.writeTextFile(
      pins,
      written.replace(
        /^EDK2_CLOUDHV_SHA256_arm64=.*$/m,
        `EDK2_CLOUDHV_SHA256_arm64=${"0".repeat(64)}`,
      ),
    );
    const bad = await run("fetch", `${dir}/arm`, "arm64");
    assert.notEqual(bad.code, 0);
    assert.match(bad.text, /CLOUDHV_EFI\.fd does not match EDK2_CLOUDHV_SHA256_arm64/);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- deployments/README.md wrapper scripts ------------------------------------------------

Deno.test("deployments README: the bundle wrappers use exactly permissions.ts's flags", async () => {
  const { permissionFlags } = await import("../../deployments/permissions.ts");
  const text = await Deno.readTextFile(`${DEPLOY}/README.md`);
  for (const binary of ["qarax", "qarax-node"] as const) {
    const m = new RegExp(`cat > /usr/(?:local/)?bin/${binary} <<'EOF'\\n([\\s\\S]*?)\\nEOF`)
      .exec(text);
    assert.ok(m, `no wrapper for ${binary}`);
    const words = m[1].replaceAll("\\\n", " ").split(/\s+/);
    const flags = words.filter((w) => w.startsWith("--allow-"));
    assert.deepEqual(flags.sort(), [...permissionFlags(binary)].sort(), binary);
    assert.ok(words.includes(`/usr/local/lib/qarax/${binary}.js`), binary);
  }
});
