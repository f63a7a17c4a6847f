/**
 * Facts about this host for `GetNodeInfo`: identity, capacity, load, the runtime dir's disk,
 * the kernel, whether /dev/kvm is usable, and the VMM binary's version.
 */
import { tryRun } from "../shared/cmd/run.ts";
import { VERSION } from "../shared/version.ts";

/** What the node reports about its host (the NodeInfo message in plain form). */
export interface HostFacts {
  hostname: string;
  architecture: string;
  totalCpus: number;
  totalMemoryBytes: number;
  availableMemoryBytes: number;
  loadAverage1m: number;
  diskTotalBytes: number;
  diskAvailableBytes: number;
  kernelVersion: string;
  cloudHypervisorVersion: string;
  cloudHypervisorEmulated: boolean;
  kvmAvailable: boolean;
  nodeVersion: string;
}

/** Normalises Deno/uname architecture names to the ones qarax stores (x86_64, aarch64). */
export function normalizeArch(arch: string): string {
  const a = arch.toLowerCase();
  if (a === "amd64" || a === "x64") return "x86_64";
  if (a === "arm64") return "aarch64";
  return a;
}

/** Parses `/proc/meminfo` into total and available bytes. */
export function parseMeminfo(text: string): { total: number; available: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { total: kb("MemTotal") * 1024, available: kb("MemAvailable") * 1024 };
}

/** Parses the data line of `df -B1 --output=size,avail`. */
export function parseDf(text: string): { total: number; available: number } {
  const line = text.trim().split("\n").at(-1) ?? "";
  const [total, available] = line.trim().split(/\s+/).map(Number);
  return { total: total || 0, available: available || 0 };
}

/** How long a VMM binary's version is trusted before it is asked again (it may be upgraded). */
const VERSION_TTL_MS = 60_000;
const versions = new Map<string, { at: number; value: { version: string; emulated: boolean } }>();

/**
 * The version line of a VMM binary and whether it is the qarax emulator. A successful answer is
 * remembered for a minute: health probes ask for node info every few seconds, and starting the
 * binary each time would cost a process per probe. A failure is not remembered.
 */
export async function vmmVersion(binary: string): Promise<{ version: string; emulated: boolean }> {
  const cached = versions.get(binary);
  if (cached && Date.now() - cached.at < VERSION_TTL_MS) return cached.value;
  try {
    const r = await tryRun([binary, "--version"], { timeoutMs: 10_000 });
    const line = r.stdout.trim().split("\n")[0] ?? "";
    if (r.code !== 0 || !line) return { version: "", emulated: false };
    const value = {
      version: line.replace(/^cloud-hypervisor\s+/, ""),
      emulated: /emulat/i.test(line),
    };
    versions.set(binary, { at: Date.now(), value });
    return value;
  } catch {
    return { version: "", emulated: false };
  }
}

async function kvmUsable(): Promise<boolean> {
  try {
    const f = await Deno.open("/dev/kvm", { read: true, write: true });
    f.close();
    return true;
  } catch {
    return false;
  }
}

/** Collects the host facts; `runtimeDir` is where VM files (and their disk usage) live. */
export async function collectHostFacts(runtimeDir: string, vmmBinary: string): Promise<HostFacts> {
  const [mem, df, vmm, kvm] = await Promise.all([
    Deno.readTextFile("/proc/meminfo").then(parseMeminfo, () => ({ total: 0, available: 0 })),
    tryRun(["df", "-B1", "--output=size,avail", runtimeDir]).then(
      (r) => r.code === 0 ? parseDf(r.stdout) : { total: 0, available: 0 },
      () => ({ total: 0, available: 0 }),
    ),
    vmmVersion(vmmBinary),
    kvmUsable(),
  ]);
  return {
    hostname: Deno.hostname(),
    architecture: normalizeArch(Deno.build.arch),
    totalCpus: navigator.hardwareConcurrency,
    totalMemoryBytes: mem.total,
    availableMemoryBytes: mem.available,
    loadAverage1m: Deno.loadavg()[0],
    diskTotalBytes: df.total,
    diskAvailableBytes: df.available,
    kernelVersion: Deno.osRelease(),
    cloudHypervisorVersion: vmm.version,
    cloudHypervisorEmulated: vmm.emulated,
    kvmAvailable: kvm,
    nodeVersion: VERSION,
  };
}
