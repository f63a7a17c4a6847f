/**
 * Snapshot directories as CH writes them for `file://<dir>`: `config.json` (the VM config),
 * `state.json` (the device state tree; here it carries the emulated guest's state) and
 * `memory-ranges` (the table of guest RAM ranges). Also reads them back for restore.
 */
import type { VmConfig } from "../vmm/types.ts";
import { ioErrorText } from "./api_error.ts";

/** What the emulator needs to resume a guest where it was. */
export interface GuestState {
  /** Guest run time so far (drives counters). */
  running_ms: number;
}

/** A snapshot problem; `message` is CH's innermost cause. */
export class SnapshotError extends Error {}

/** `file:///dir` → `/dir`, which must be an existing directory. */
export function snapshotDir(url: string): string {
  if (!url.startsWith("file://")) {
    throw new SnapshotError(`Could not extract path from URL: ${url}`);
  }
  const path = url.slice("file://".length);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw new SnapshotError(ioErrorText(err));
  }
  if (!info.isDirectory) throw new SnapshotError(`${path} is not a directory`);
  return path;
}

/** Writes the three snapshot files into `dir`. */
export async function writeSnapshot(
  dir: string,
  config: VmConfig,
  guest: GuestState,
): Promise<void> {
  const section = (id: string, data: unknown) => ({
    id,
    snapshots: {},
    snapshot_data: { [`${id}-section`]: { id: `${id}-section`, snapshot: data } },
  });
  const state = {
    id: "vm",
    snapshots: {
      "cpu-manager": section("cpu-manager", { boot_vcpus: config.cpus?.boot_vcpus ?? 1 }),
      "memory-manager": section("memory-manager", { size: config.memory?.size ?? 0 }),
      "device-manager": section("device-manager", { emulated: true }),
    },
    snapshot_data: { "vm-section": { id: "vm-section", snapshot: { qarax_emulator: guest } } },
  };
  try {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
    await Deno.writeFile(`${dir}/memory-ranges`, memoryRanges(config.memory?.size ?? 0));
  } catch (err) {
    throw new SnapshotError(ioErrorText(err));
  }
}

/** Reads a snapshot's config text and guest state. */
export async function readSnapshot(
  dir: string,
): Promise<{ configText: string; guest: GuestState }> {
  let configText: string;
  let stateText: string;
  try {
    configText = await Deno.readTextFile(`${dir}/config.json`);
    stateText = await Deno.readTextFile(`${dir}/state.json`);
  } catch (err) {
    throw new SnapshotError(ioErrorText(err));
  }
  let guest: GuestState = { running_ms: 0 };
  try {
    const state = JSON.parse(stateText);
    const g = state?.snapshot_data?.["vm-section"]?.snapshot?.qarax_emulator;
    if (g && typeof g.running_ms === "number") guest = { running_ms: g.running_ms };
  } catch (err) {
    throw new SnapshotError(`Error deserialising: vm ${(err as Error).message}`);
  }
  return { configText, guest };
}

/** The RAM layout table: (start, length) u64 pairs, below and above the 32-bit hole. */
function memoryRanges(size: number): Uint8Array {
  const low = Math.min(size, 3 * 1024 ** 3);
  const ranges: [number, number][] = [[0, low]];
  if (size > low) ranges.push([4 * 1024 ** 3, size - low]);
  const out = new Uint8Array(16 * ranges.length);
  const view = new DataView(out.buffer);
  ranges.forEach(([start, len], i) => {
    view.setBigUint64(i * 16, BigInt(start), true);
    view.setBigUint64(i * 16 + 8, BigInt(len), true);
  });
  return out;
}
