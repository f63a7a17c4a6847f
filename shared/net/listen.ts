/**
 * Listen addresses of both binaries: parsing `host:port` / `unix:/path`, and the policy that
 * an unauthenticated service only listens on loopback unless the operator insists.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../errors/errors.ts";

/** A parsed listen address. */
export type ListenAddr =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** Parses `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export function parseListen(addr: string): ListenAddr {
  if (addr.startsWith("unix:")) {
    const path = addr.slice(5).replace(/^\/\/(?=\/)/, "");
    if (!path.startsWith("/")) {
      throw new InvalidArgumentError(`listen address ${addr}: unix path must be absolute`);
    }
    return { transport: "unix", path };
  }
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`listen address ${addr}: expected host:port or unix:/path`);
  }
  return { transport: "tcp", hostname: m[1].replace(/^\[|\]$/g, ""), port };
}

/** True when only this machine can connect to `addr`. */
export function isLoopback(addr: ListenAddr): boolean {
  if (addr.transport === "unix") return true;
  const h = addr.hostname.toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Refuses a non-loopback listener without authentication unless explicitly allowed. */
export function assertSafeListen(
  addr: ListenAddr,
  authenticated: boolean,
  allowInsecure: boolean,
  setting: string,
): void {
  if (authenticated || allowInsecure || isLoopback(addr)) return;
  const where = addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : addr.path;
  throw new FailedPreconditionError(
    `refusing to listen on ${where} without authentication; enable auth or set ${setting}: true`,
  );
}

/** The address as a string (`host:port`, `[v6]:port` or `unix:/path`). */
export function formatListen(addr: ListenAddr): string {
  if (addr.transport === "unix") return `unix:${addr.path}`;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
