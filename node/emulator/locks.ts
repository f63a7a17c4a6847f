/**
 * Advisory locks the way CH takes them: open-file-description (OFD) fcntl locks, held for as
 * long as the fd stays open and released by the kernel when the process dies. Used for the
 * `<socket>.lock` file and for disk images (so a real CH and the emulator exclude each other).
 */
import {
  closeFd,
  errno,
  libc,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  openFd,
  OsError,
} from "../sys/libc.ts";

const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const EAGAIN = 11;
const EACCES = 13;

/** A held lock; `release()` closes its fd. */
export interface HeldLock {
  readonly path: string;
  release(): void;
}

export interface LockRequest {
  /** Shared (read) lock instead of exclusive. */
  shared?: boolean;
  /** Lock only the bytes [0, length) (CH's default ByteRange granularity); 0 = whole file. */
  length?: number;
  /** Create the file if missing (lock files), instead of failing. */
  create?: boolean;
}

/** Tries to take the lock without waiting: the lock, or "busy" when another holder has it. */
export function tryLock(path: string, req: LockRequest = {}): HeldLock | "busy" {
  const flags = req.create
    ? O_CREAT | (req.shared ? O_RDONLY : O_WRONLY)
    : req.shared
    ? O_RDONLY
    : O_RDWR;
  const fd = openFd(path, flags, 0o600);
  // struct flock (x86_64/aarch64): short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
  const fl = new Uint8Array(32);
  const view = new DataView(fl.buffer);
  view.setInt16(0, req.shared ? F_RDLCK : F_WRLCK, true);
  view.setInt16(2, 0, true); // SEEK_SET
  view.setBigInt64(8, 0n, true);
  view.setBigInt64(16, BigInt(req.length ?? 0), true);
  if (libc().fcntl(fd, F_OFD_SETLK, fl) < 0) {
    const code = errno();
    closeFd(fd);
    if (code === EAGAIN || code === EACCES) return "busy";
    throw new OsError(code, "fcntl");
  }
  let held = true;
  return {
    path,
    release() {
      if (held) closeFd(fd);
      held = false;
    },
  };
}
