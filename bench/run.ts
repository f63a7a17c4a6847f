/** `deno task bench`: runs every benchmark in this folder (`*.ts` with a `main`), one by one. */
const here = new URL(".", import.meta.url);
const skip = new Set(["run.ts", "api_servers.ts"]);
const files = [...Deno.readDirSync(here)].map((e) => e.name)
  .filter((n) => n.endsWith(".ts") && !skip.has(n) && !n.endsWith("_test.ts")).sort();
const only = Deno.args[0];
for (const f of files) {
  if (only && !f.startsWith(only)) continue;
  console.log(`\n## ${f}\n`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(f, here).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) Deno.exit(code);
}
