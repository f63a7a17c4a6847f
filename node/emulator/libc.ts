/**
 * The few libc calls Deno does not offer, through FFI: OFD byte-range locks (what CH uses
 * for the API socket lock file and disk images), writing to an inherited fd, pty allocation
 * and tap devices (TUNSETIFF). glibc only (`libc.so.6`); opened on first use, so startup
 * stays fast.
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
