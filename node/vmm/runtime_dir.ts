/**
 * The per-VM runtime directory `<runtime>/<vm id>/`: where a VM's VMM keeps its API socket,
 * event-monitor file, log and console, and where the node keeps the VM's persisted spec, its
 * own bookkeeping (state, VMM pid, event offset) and the cloud-init seed. Names are fixed here,
 * in one place; the directory is private to root (0700) since the seed may hold secrets.
 */
import { join } from "node:path";
import { VM_ID, vmId as checkVmId } from "../../shared/net/names.ts";

/** Every file of one VM's runtime directory. */
export interface VmPaths {
  dir: string;
  /** `--api-socket path=`. */
  apiSocket: string;
  /** `--event-monitor path=`. */
  events: string;
  /** `--log-file`. */
  chLog: string;
  /** The VMM's stdout and stderr (never a pipe to the agent). */
  stderr: string;
  /** The persisted spec and the CH config last sent. */
  spec: string;
  /** The node's bookkeeping for the VM (status, provisioning, VMM start time). */
  state: string;
  /** The VMM's pid. */
  pid: string;
  /** Bytes of `events` already processed (so a restarted agent resumes there). */
  eventsOffset: string;
  /** The NoCloud seed image. */
  seed: string;
  serialLog: string;
  consoleLog: string;
  serialSocket: string;
  vsockSocket: string;
}

/** The runtime files of `vmId` under `root`. */
export function vmPaths(root: string, vmId: string): VmPaths {
  const dir = join(root, checkVmId(vmId));
  return {
    dir,
    apiSocket: join(dir, "api.sock"),
    events: join(dir, "events"),
    chLog: join(dir, "ch.log"),
    stderr: join(dir, "vmm.stderr"),
    spec: join(dir, "spec.json"),
    state: join(dir, "state.json"),
    pid: join(dir, "vmm.pid"),
    eventsOffset: join(dir, "events.offset"),
    seed: join(dir, "cidata.img"),
    serialLog: join(dir, "serial.log"),
    consoleLog: join(dir, "console.log"),
    serialSocket: join(dir, "serial.sock"),
    vsockSocket: join(dir, "vsock.sock"),
  };
}

/** Creates the VM's directory (private to the agent's user). */
export async function createVmDir(paths: VmPaths): Promise<void> {
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(paths.dir, 0o700);
}

/** Removes the VM's directory and everything in it; a missing one is fine. */
export async function removeVmDir(paths: VmPaths): Promise<void> {
  await Deno.remove(paths.dir, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

/** The ids of the VM directories under `root` (other entries are ignored). */
export async function listVmDirs(root: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (e.isDirectory && VM_ID.test(e.name)) ids.push(e.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return ids.sort();
}

/** The last `lines` non-empty lines of a text file ("" when it cannot be read). */
export async function tailLines(path: string, lines = 3, maxBytes = 16 * 1024): Promise<string[]> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return [];
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - maxBytes);
    await file.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got)).split("\n").map((l) => l.trim())
      .filter(Boolean).slice(-lines);
  } finally {
    file.close();
  }
}
