/**
 * Fault-injection and timing knobs, read once from the environment at start (so the command
 * line stays exactly CH's). Documented in node/emulator/README.md.
 */

/** Every knob, with its effect. */
export interface Faults {
  /** QARAX_EMU_BOOT_DELAY_MS: time `vm.boot` (and reboot/restore boots) takes. */
  bootDelayMs: number;
  /** QARAX_EMU_FAIL_BOOT: how many boots fail (`always` = every one). */
  failBoots: number;
  /** QARAX_EMU_SNAPSHOT_DELAY_MS: time `vm.snapshot` takes. */
  snapshotDelayMs: number;
  /** QARAX_EMU_RESTORE_DELAY_MS: time `vm.restore` takes. */
  restoreDelayMs: number;
  /** QARAX_EMU_CRASH_ON: endpoints (`vm.boot,vm.pause`) that kill the process when called. */
  crashOn: Set<string>;
  /** QARAX_EMU_POWEROFF_DELAY_MS: time between the ACPI power button and the guest's poweroff. */
  poweroffDelayMs: number;
  /** QARAX_EMU_VCPU_UNPLUG_MS: how long a vCPU removal stays pending (429 window). */
  vcpuUnplugMs: number;
  /** QARAX_EMU_ACTIVATE_DELAY_MS: delay of `virtio-device/activated` events after boot. */
  activateDelayMs: number;
  /** QARAX_EMU_START_DELAY_MS: delay before the API socket is bound (slow start). */
  startDelayMs: number;
}

const ms = (env: Record<string, string | undefined>, key: string, fallback: number) => {
  const v = env[key];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${key}: expected milliseconds, got ${v}`);
  return n;
};

/** Reads the knobs from `env` (defaults: no faults, short realistic delays). */
export function readFaults(env: Record<string, string | undefined>): Faults {
  const fail = env.QARAX_EMU_FAIL_BOOT ?? "";
  let failBoots = 0;
  if (fail === "always") failBoots = Infinity;
  else if (fail !== "") {
    failBoots = Number(fail);
    if (!Number.isInteger(failBoots) || failBoots < 0) {
      throw new Error(`QARAX_EMU_FAIL_BOOT: expected a count or "always", got ${fail}`);
    }
  }
  return {
    bootDelayMs: ms(env, "QARAX_EMU_BOOT_DELAY_MS", 0),
    failBoots,
    snapshotDelayMs: ms(env, "QARAX_EMU_SNAPSHOT_DELAY_MS", 0),
    restoreDelayMs: ms(env, "QARAX_EMU_RESTORE_DELAY_MS", 0),
    crashOn: new Set(
      (env.QARAX_EMU_CRASH_ON ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""),
    ),
    poweroffDelayMs: ms(env, "QARAX_EMU_POWEROFF_DELAY_MS", 50),
    vcpuUnplugMs: ms(env, "QARAX_EMU_VCPU_UNPLUG_MS", 200),
    activateDelayMs: ms(env, "QARAX_EMU_ACTIVATE_DELAY_MS", 10),
    startDelayMs: ms(env, "QARAX_EMU_START_DELAY_MS", 0),
  };
}

/** No faults at all (unit tests). */
export const NO_FAULTS: Faults = readFaults({});
