/**
 * Tap devices the way CH handles a `net` entry: a named tap that exists is attached to
 * (TUNSETIFF, so a multi-queue mismatch fails as it does for CH) and brought up; a missing one,
 * or an entry without `tap`, gets a new tap (`vmtap%d`) created by opening /dev/net/tun, which
 * the kernel destroys when the fd closes (VM shutdown, or process death, even a crash).
 * Addresses, MTU, MAC and link state are set with `ip`. An entry whose queues came as
 * descriptors (SCM_RIGHTS, e.g. macvtap) uses them as they are, after checking (TUNGETIFF, as
 * CH's `Tap::from_tap_fd` does) that each really is an attached tap or macvtap queue.
 */
import type { NetConfig } from "../vmm/types.ts";
import { closeFd, errno, libc, O_RDWR, openFd, OsError } from "../sys/libc.ts";

const TUNSETIFF = 0x400454ca;
const TUNGETIFF = 0x800454d2;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_MULTI_QUEUE = 0x0100;

/** A tap the VM uses; `close()` detaches (and so removes a tap the emulator created). */
export interface TapHandle {
  readonly name: string;
  /** True when this process created the tap (it disappears on close). */
  readonly created: boolean;
  close(): void;
}

/** Why a tap could not be set up: CH's cause chain below "Error from device manager". */
export class TapError extends Error {
  constructor(readonly causes: string[]) {
    super(causes.join(": "));
    this.name = "TapError";
  }
}

/** True when a network interface of that name exists. */
export function interfaceExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** What a descriptor passed as a tap queue turned out to be. */
export interface TapFdInfo {
  fd: number;
  /** The interface the queue belongs to (a tap, or a macvtap such as `macvtap0`). */
  name: string;
  multiQueue: boolean;
}

/**
 * Checks that every descriptor is a queue of a tap or macvtap device (TUNGETIFF answers with
 * its interface and IFF_TAP): a regular file, a socket or a detached /dev/net/tun is refused.
 */
export function inspectTapFds(fds: number[]): TapFdInfo[] {
  return fds.map((fd) => {
    const ifr = new Uint8Array(40);
    if (fd < 0 || libc().ioctl(fd, BigInt(TUNGETIFF), ifr) < 0) {
      const code = fd < 0 ? 9 /* EBADF */ : errno();
      throw new TapError([
        "Cannot create virtio-net device",
        "Failed to open taps",
        `Failed to create tap from fd ${fd}`,
        `ioctl TUNGETIFF failed: ${new OsError(code, "ioctl").message}`,
      ]);
    }
    const flags = new DataView(ifr.buffer).getUint16(16, true);
    const end = ifr.indexOf(0);
    const name = new TextDecoder().decode(ifr.subarray(0, end < 0 ? 16 : Math.min(end, 16)));
    if ((flags & IFF_TAP) === 0) {
      throw new TapError([
        "Cannot create virtio-net device",
        "Failed to open taps",
        `Failed to create tap from fd ${fd}`,
        `${name} is a TUN device, not a TAP device`,
      ]);
    }
    return { fd, name, multiQueue: (flags & IFF_MULTI_QUEUE) !== 0 };
  });
}

/** Opens (attaching or creating) the tap for one `net` entry; `fds`: its passed queues. */
export async function openTap(net: NetConfig, fds?: number[]): Promise<TapHandle> {
  if (net.fds) {
    // The descriptors belong to the config entry (a reboot reuses them); closing the handle
    // only detaches the VM from them.
    const taps = inspectTapFds(fds ?? net.fds);
    return { name: taps[0]?.name ?? "", created: false, close() {} };
  }
  const wanted = net.tap;
  const exists = wanted !== undefined && interfaceExists(wanted);
  const multiQueue = (net.num_queues ?? 2) > 2;
  if (exists && Deno.uid() !== 0) {
    // Without CAP_NET_ADMIN only the owner could attach; we cannot check ownership here, so
    // trust that the node created it for us and leave it alone.
    return { name: wanted, created: false, close() {} };
  }
  let fd: number;
  try {
    fd = openFd("/dev/net/tun", O_RDWR);
  } catch (err) {
    throw tapFailure(err);
  }
  const ifr = new Uint8Array(40);
  const nameBytes = new TextEncoder().encode(wanted ?? "vmtap%d");
  if (nameBytes.length > 15) {
    closeFd(fd);
    throw new TapError([
      "Cannot create virtio-net device",
      "Failed to open taps",
      `Invalid interface name: ${wanted}`,
    ]);
  }
  ifr.set(nameBytes);
  new DataView(ifr.buffer).setUint16(
    16,
    IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multiQueue ? IFF_MULTI_QUEUE : 0),
    true,
  );
  if (libc().ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
    const code = errno();
    closeFd(fd);
    throw tapFailure(new OsError(code, "ioctl"));
  }
  const end = ifr.indexOf(0);
  const name = new TextDecoder().decode(ifr.subarray(0, end < 0 ? 16 : Math.min(end, 16)));
  const handle: TapHandle = {
    name,
    created: !exists,
    close: () => closeFd(fd),
  };
  try {
    await configure(name, net, !exists);
  } catch (err) {
    handle.close();
    throw err;
  }
  return handle;
}

async function configure(name: string, net: NetConfig, created: boolean): Promise<void> {
  const { run } = await import("../../shared/cmd/run.ts");
  const ip = async (...args: string[]) => {
    try {
      await run(["ip", ...args], { timeoutMs: 10_000 });
    } catch (err) {
      throw new TapError([
        "Cannot create virtio-net device",
        "Failed to open taps",
        `Error configuring tap ${name}`,
        (err as Error).message,
      ]);
    }
  };
  // CH sets the host address only on a tap it created; an existing tap keeps its IP.
  if (created && net.ip && net.mask) {
    await ip("addr", "add", `${net.ip}/${prefixLength(net.mask)}`, "dev", name);
  }
  if (net.host_mac) await ip("link", "set", "dev", name, "address", net.host_mac);
  if (net.mtu) await ip("link", "set", "dev", name, "mtu", String(net.mtu));
  await ip("link", "set", "dev", name, "up");
}

/** `255.255.255.0` → 24 (an IPv6 mask given as a number is passed through). */
export function prefixLength(mask: string): number {
  if (/^\d+$/.test(mask)) return Number(mask);
  return mask.split(".").map(Number).reduce(
    (bits, octet) => bits + octet.toString(2).replaceAll("0", "").length,
    0,
  );
}

function tapFailure(err: unknown): TapError {
  const text = err instanceof OsError ? err.message : String(err);
  return new TapError([
    "Cannot create virtio-net device",
    "Failed to open taps",
    "Open tap device failed",
    text,
  ]);
}
