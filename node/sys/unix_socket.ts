/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS), through libc: Deno's own unix
 * sockets can neither send nor receive descriptors. Used by the node to hand tap devices to
 * Cloud Hypervisor (`vm.add-net`, `vm.restore`) and by the CH emulator's API server to receive
 * them. Descriptors are non-blocking; waiting happens in `poll` on a worker thread (bounded
 * waits, so a socket being closed is noticed), and every other call runs synchronously so its
 * errno can be read.
 */
import { errno, libc, OsError } from "./libc.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_CTRUNC = 0x8;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;
const SHUT_RDWR = 2;
/** Longest wait of one `poll`, so `close()` is never stuck behind a sleeping worker thread. */
const POLL_SLICE_MS = 200;
/** Most descriptors accepted with one message (CH takes at most a few per NIC). */
const MAX_FDS = 64;

/** A socket operation did not finish in time. */
export class SocketTimeoutError extends Error {
  constructor(op: string) {
    super(`${op} timed out`);
    this.name = "SocketTimeoutError";
  }
}

function sockaddrUn(path: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length >= 108) throw new OsError(36, /* ENAMETOOLONG */ "socket path");
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}

function ptr(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** A `struct msghdr` for one buffer and optional control data (LP64 layout). */
function msghdr(
  data: Uint8Array<ArrayBuffer>,
  control: Uint8Array<ArrayBuffer> | null,
): { hdr: Uint8Array<ArrayBuffer>; keep: unknown[] } {
  const iov = new Uint8Array(16);
  const iv = new DataView(iov.buffer);
  iv.setBigUint64(0, data.length ? ptr(data) : 0n, true);
  iv.setBigUint64(8, BigInt(data.length), true);
  const hdr = new Uint8Array(56);
  const h = new DataView(hdr.buffer);
  h.setBigUint64(16, ptr(iov), true);
  h.setBigUint64(24, 1n, true);
  if (control) {
    h.setBigUint64(32, ptr(control), true);
    h.setBigUint64(40, BigInt(control.length), true);
  }
  return { hdr, keep: [iov, data, control] };
}

/** Control data carrying `fds` (one SCM_RIGHTS cmsghdr). */
function rightsControl(fds: number[]): Uint8Array<ArrayBuffer> {
  const len = 16 + fds.length * 4;
  const buf = new Uint8Array((len + 7) & ~7);
  const v = new DataView(buf.buffer);
  v.setBigUint64(0, BigInt(len), true);
  v.setInt32(8, SOL_SOCKET, true);
  v.setInt32(12, SCM_RIGHTS, true);
  fds.forEach((fd, i) => v.setInt32(16 + i * 4, fd, true));
  return buf;
}

/** The descriptors in received control data. */
function parseRights(control: Uint8Array<ArrayBuffer>, length: number): number[] {
  const fds: number[] = [];
  const v = new DataView(control.buffer);
  for (let off = 0; off + 16 <= length;) {
    const len = Number(v.getBigUint64(off, true));
    if (len < 16) break;
    if (v.getInt32(off + 8, true) === SOL_SOCKET && v.getInt32(off + 12, true) === SCM_RIGHTS) {
      for (let p = off + 16; p + 4 <= off + len; p += 4) fds.push(v.getInt32(p, true));
    }
    off += (len + 7) & ~7;
  }
  return fds;
}

/** Waits (off the main thread) until `fd` is ready for `events`; false at the deadline. */
async function waitReady(
  fd: number,
  events: number,
  deadline: number,
  isClosed: () => boolean,
): Promise<boolean> {
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  for (;;) {
    if (isClosed()) return false;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    v.setInt32(0, fd, true);
    v.setInt16(4, events, true);
    v.setInt16(6, 0, true);
    const n = await libc().poll(pfd, 1n, Math.min(left, POLL_SLICE_MS));
    if (n > 0) return true; // ready, or an error/hang-up the next call will report
  }
}

/** A connected unix stream socket whose messages may carry descriptors. */
export class FdSocket {
  #closed = false;
  #busy = 0;
  #idle: (() => void) | null = null;
  /** Descriptors received with data not yet claimed by `takeFds`. */
  readonly #fds: number[] = [];

  constructor(readonly fd: number) {}

  /** Connects to the unix socket at `path`. */
  static async connect(path: string, timeoutMs = 10_000): Promise<FdSocket> {
    const fd = libc().socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new OsError(errno(), "socket");
    const sock = new FdSocket(fd);
    try {
      const addr = sockaddrUn(path);
      if (libc().connect(fd, addr, addr.length) < 0) {
        const code = errno();
        if (code !== EAGAIN && code !== EINPROGRESS) throw new OsError(code, "connect");
        if (!await sock.#wait(POLLOUT, Date.now() + timeoutMs)) {
          throw new SocketTimeoutError("connect");
        }
      }
      return sock;
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  /** Sends all of `data`; `fds` ride along with its first byte. */
  async send(data: Uint8Array, fds: number[] = [], timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let off = 0;
    let rights = fds.length ? rightsControl(fds) : null;
    while (off < data.length || rights) {
      const chunk = data.slice(off) as Uint8Array<ArrayBuffer>;
      const { hdr, keep } = msghdr(chunk, rights);
      const n = Number(libc().sendmsg(this.fd, hdr, MSG_NOSIGNAL));
      void keep;
      if (n < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code !== EAGAIN) throw new OsError(code, "sendmsg");
        if (!await this.#wait(POLLOUT, deadline)) throw new SocketTimeoutError("send");
        continue;
      }
      rights = null;
      off += n;
    }
  }

  /**
   * Reads up to `buf.length` bytes; null at end of stream. Descriptors that arrive are kept
   * for `takeFds` (and closed with the socket if nobody takes them).
   */
  async read(buf: Uint8Array, timeoutMs = Infinity): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    const data = new Uint8Array(buf.length);
    const control = new Uint8Array(16 + MAX_FDS * 4);
    for (;;) {
      if (this.#closed) return null;
      const { hdr, keep } = msghdr(data, control);
      const n = Number(libc().recvmsg(this.fd, hdr, MSG_CMSG_CLOEXEC));
      void keep;
      if (n < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code !== EAGAIN) throw new OsError(code, "recvmsg");
        if (!await this.#wait(POLLIN, deadline)) {
          if (this.#closed) return null;
          throw new SocketTimeoutError("read");
        }
        continue;
      }
      const h = new DataView(hdr.buffer);
      const fds = parseRights(control, Number(h.getBigUint64(40, true)));
      if (h.getInt32(48, true) & MSG_CTRUNC) {
        for (const fd of fds) libc().close(fd);
        throw new OsError(105, /* ENOBUFS */ "recvmsg (too many descriptors)");
      }
      this.#fds.push(...fds);
      if (n === 0) return null;
      buf.set(data.subarray(0, n));
      return n;
    }
  }

  /** Writes all of `data` (Deno.Conn-compatible); returns its length. */
  async write(data: Uint8Array): Promise<number> {
    await this.send(data, [], 60_000);
    return data.length;
  }

  /** The descriptors received so far (the caller owns and must close them). */
  takeFds(): number[] {
    return this.#fds.splice(0);
  }

  /** Closes the socket (once no call is waiting on it) and any unclaimed descriptors. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().shutdown(this.fd, SHUT_RDWR);
    for (const fd of this.takeFds()) libc().close(fd);
    const release = () => libc().close(this.fd);
    if (this.#busy === 0) release();
    else this.#idle = release;
  }

  async #wait(events: number, deadline: number): Promise<boolean> {
    this.#busy++;
    try {
      return await waitReady(this.fd, events, deadline, () => this.#closed);
    } finally {
      if (--this.#busy === 0 && this.#idle) {
        this.#idle();
        this.#idle = null;
      }
    }
  }
}

/** A listening unix stream socket whose connections may carry descriptors. */
export class FdListener {
  #closed = false;
  #busy = false;

  private constructor(readonly fd: number, readonly path: string) {}

  /** Binds and listens at `path` (which must not exist). */
  static listen(path: string, backlog = 128): FdListener {
    const fd = libc().socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new OsError(errno(), "socket");
    const addr = sockaddrUn(path);
    if (libc().bind(fd, addr, addr.length) < 0 || libc().listen(fd, backlog) < 0) {
      const code = errno();
      libc().close(fd);
      throw new OsError(code, "bind");
    }
    return new FdListener(fd, path);
  }

  /** The next connection; rejects once the listener is closed. */
  async accept(): Promise<FdSocket> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("listener closed");
      const fd = libc().accept4(this.fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return new FdSocket(fd);
      const code = errno();
      if (code !== EAGAIN && code !== EINTR) throw new OsError(code, "accept4");
      this.#busy = true;
      try {
        await waitReady(this.fd, POLLIN, Infinity, () => this.#closed);
      } finally {
        this.#busy = false;
      }
      if (this.#closed) libc().close(this.fd);
    }
  }

  /** Stops listening (the socket file stays; callers remove it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#busy) libc().close(this.fd);
  }
}
