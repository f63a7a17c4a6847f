/**
 * Registration of contract tests with their requirements: emulator-only tests (fault
 * injection) are skipped against a real CH, tests that boot a real CH need CH_KERNEL, tests
 * that create taps need root (skipped otherwise, except under CI=true, where they must run).
 * A skipped test stays visible in the report with the reason in its name.
 */
import { CH_KERNEL, REAL_CH } from "./emulator.ts";

export interface Needs {
  /** Uses emulator-only knobs (fault injection, exact emulated output). */
  emulatorOnly?: boolean;
  /** Boots a VM (a real CH then needs CH_KERNEL). */
  boot?: boolean;
  /** Creates network devices (root only; never skipped under CI=true). */
  root?: boolean;
}

/** Why a test with these needs cannot run here, or null. */
export function skipReason(needs: Needs): string | null {
  if (needs.emulatorOnly && REAL_CH) return "emulator-only, CH_BINARY is set";
  if (needs.boot && REAL_CH && !CH_KERNEL) return "booting a real CH needs CH_KERNEL";
  if (needs.root && Deno.uid() !== 0 && Deno.env.get("CI") !== "true") return "needs root";
  return null;
}

/** `Deno.test` with requirements. */
export function contractTest(
  name: string,
  needs: Needs,
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const reason = skipReason(needs);
  if (reason) {
    Deno.test({ name: `${name} [skipped: ${reason}]`, ignore: true, fn });
    return;
  }
  Deno.test({ name, fn });
}
