/**
 * Entry point of the Cloud Hypervisor emulator: `deno run -A node/emulator/main.ts <CH args>`
 * behaves like `cloud-hypervisor <CH args>` (see README.md next to this file).
 */
import { parseCli } from "./cli.ts";
import { fatal, runEmulator } from "./emulator.ts";

if (import.meta.main) {
  const outcome = parseCli(Deno.args);
  if (outcome.kind === "exit") {
    if (outcome.stdout) await Deno.stdout.write(new TextEncoder().encode(outcome.stdout));
    if (outcome.stderr) await Deno.stderr.write(new TextEncoder().encode(outcome.stderr));
    Deno.exit(outcome.code);
  }
  try {
    await runEmulator(outcome.args, Deno.env.toObject());
  } catch (err) {
    fatal([(err as Error).message]);
  }
}
