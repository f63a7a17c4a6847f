/**
 * The few libc calls Deno does not offer, through FFI, for the node and the CH emulator: OFD
 * byte-range locks (what CH uses for the API socket lock file and disk images), writing to an
 * inherited fd, pty allocation, tap devices (TUNSETIFF/TUNGETIFF), device nodes (mknod) and
 * unix sockets that carry file descriptors (SCM_RIGHTS). glibc only (`libc.so.6`); opened on
 * first use, so startup stays fast.
 *
 * Only `poll` runs as a `nonblocking` call (on a worker thread, so the event loop keeps
 * going): errno is per thread, so every call whose errno matters runs synchronously on
 * non-blocking descriptors after `poll` said it will not block.
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  write_async: {
    name: "write",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  strerror: { parameters: ["i32"], result: "pointer" },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Libc | null = null;

/** The libc symbols (loaded once). */
export function libc(): Libc {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_NOCTTY = 0o400;
export const O_CLOEXEC = 0o2000000;

const encoder = new TextEncoder();

/** A NUL-terminated copy of a path, for FFI. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s + "\0") as Uint8Array<ArrayBuffer>;
}

/** The calling thread's errno (valid right after a failed synchronous call). */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** Rust's `io::Error` display for an errno: `Resource temporarily unavailable (os error 11)`. */
export function osErrorText(code: number): string {
  const p = libc().strerror(code);
  const text = p ? Deno.UnsafePointerView.getCString(p) : `errno ${code}`;
  return `${text} (os error ${code})`;
}

/** An OS error from a failed libc call. */
export class OsError extends Error {
  constructor(readonly code: number, readonly op: string) {
    super(osErrorText(code));
    this.name = "OsError";
  }
}

/** open(2); throws OsError. */
export function openFd(path: string, flags: number, mode = 0o600): number {
  const fd = libc().open(cString(path), flags | O_CLOEXEC, mode);
  if (fd < 0) throw new OsError(errno(), "open");
  return fd;
}

/** close(2), ignoring errors. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** Writes all of `data` to a raw fd (blocking); throws OsError. */
export function writeFd(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    const chunk = data.subarray(off) as Uint8Array<ArrayBuffer>;
    const n = Number(libc().write(fd, chunk, BigInt(chunk.length)));
    if (n < 0) {
      const code = errno();
      if (code === 4 /* EINTR */ || code === 11 /* EAGAIN */) continue;
      throw new OsError(code, "write");
    }
    off += n;
  }
}

/** glibc's `makedev`: the dev_t of a device number. */
export function makeDev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) |
    (mi & 0xffn);
}

/** Creates a character device node (mode 0600); throws OsError. */
export function mknodChar(path: string, major: number, minor: number): void {
  const S_IFCHR = 0o020000;
  if (libc().mknod(cString(path), S_IFCHR | 0o600, makeDev(major, minor)) < 0) {
    throw new OsError(errno(), "mknod");
  }
}
