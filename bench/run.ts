/**
 * Runs the benchmarks (`bench/<name>_bench.ts`), each in its own process: all of them, or the
 * ones named on the command line (`deno task bench node_agent`). Extra `--flags` after the
 * names are passed to every benchmark. Benchmarks are not tests: they print figures.
 */
const here = new URL(".", import.meta.url).pathname;
const names = Deno.args.filter((a) => !a.startsWith("-"));
const flags = Deno.args.filter((a) => a.startsWith("-"));
const all = [...Deno.readDirSync(here)].map((e) => e.name).filter((n) => n.endsWith("_bench.ts"))
  .map((n) => n.replace(/_bench\.ts$/, "")).sort();
const chosen = names.length ? names : all;
let failed = false;
for (const name of chosen) {
  if (!all.includes(name)) {
    console.error(`no benchmark ${name} (have: ${all.join(", ")})`);
    Deno.exit(2);
  }
  console.log(`== ${name}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}${name}_bench.ts`, ...flags],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) failed = true;
}
Deno.exit(failed ? 1 : 0);
