/**
 * The DHCP servers of the node's bridges: one dnsmasq per bridge (configuration from
 * `dnsmasq.ts`), started as a detached process like a VMM (own session, no inherited
 * descriptors) so it outlives the agent, re-adopted after an agent restart by its pid file and
 * command line, and restarted (with backoff) when it dies. A new reservation set is written
 * atomically and dnsmasq is told to re-read it (SIGHUP); when a lease stands in the way of the
 * new set (an address moving to another MAC) dnsmasq is restarted with that lease dropped instead,
 * because it would not hand the address to its new owner before the old lease ran out.
 *
 * dnsmasq drops its privileges to `nobody` and then reads the hosts file, so the files live in a
 * directory everyone may traverse and read (reservations are what the wire shows anyway).
 */
import { dirname } from "node:path";
import { KeyedSerialQueue } from "../../shared/async/serial.ts";
import { FailedPreconditionError, UnavailableError } from "../../shared/errors/errors.ts";
import { logger } from "../../shared/log/logger.ts";
import { interfaceName } from "../../shared/net/names.ts";
import { describeExit, DetachedProcess, type ProcessIdentity } from "../proc/detached.ts";
import { writeFileAtomic } from "../state/atomic.ts";
import {
  blockingLeases,
  type DhcpOptions,
  type DhcpPaths,
  dhcpPaths,
  dnsmasqArgv,
  dnsmasqConfig,
  dnsmasqHosts,
  parseLeases,
} from "./dnsmasq.ts";
import type { IpAdapter } from "./ip.ts";
import type { DhcpReservation } from "./spec.ts";

/** Everything one bridge's DHCP server serves. */
export interface DhcpServerSpec extends DhcpOptions {
  reservations: DhcpReservation[];
}

/** What `ensure` had to do. */
export type DhcpAction = "started" | "restarted" | "reloaded" | "unchanged";

export interface DhcpServersOptions {
  /** First delay before restarting a dnsmasq that died (doubles up to `maxRestartDelayMs`). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** How long a new dnsmasq may take to report that it started. */
  startTimeoutMs?: number;
  /** How often an adopted dnsmasq is checked for being alive. */
  pollMs?: number;
}

interface Server {
  spec: DhcpServerSpec;
  paths: DhcpPaths;
  proc: DetachedProcess | null;
  restartTimer?: ReturnType<typeof setTimeout>;
  failures: number;
  startedAt: number;
}

const encoder = new TextEncoder();

/** The dnsmasq processes of this node's bridges. */
export class DhcpServers {
  readonly #servers = new Map<string, Server>();
  readonly #queue = new KeyedSerialQueue();
  readonly #watched = new WeakSet<DetachedProcess>();
  readonly #log = logger().child({ component: "dhcp" });
  #closed = false;

  constructor(
    readonly root: string,
    readonly ip: IpAdapter,
    readonly options: DhcpServersOptions = {},
  ) {}

  /** The pid of the bridge's dnsmasq, when one runs. */
  pid(bridge: string): number | undefined {
    const proc = this.#servers.get(bridge)?.proc;
    return proc?.alive ? proc.pid : undefined;
  }

  /**
   * Makes the bridge's DHCP server serve `spec`: adopts a running one (after an agent
   * restart), reloads it when only the reservations changed, restarts it when its
   * configuration changed or a lease blocks a reservation, starts it otherwise.
   */
  ensure(spec: DhcpServerSpec): Promise<DhcpAction> {
    interfaceName(spec.bridge, "bridge_name");
    return this.#queue.run(spec.bridge, async () => {
      const paths = dhcpPaths(this.root, spec.bridge);
      const server = this.#servers.get(spec.bridge) ??
        { spec, paths, proc: null, failures: 0, startedAt: 0 };
      server.spec = spec;
      this.#servers.set(spec.bridge, server);
      return await this.#apply(server);
    });
  }

  /** Replaces the reservations of a running bridge server (see `ensure`). */
  setReservations(bridge: string, reservations: DhcpReservation[]): Promise<DhcpAction> {
    const server = this.#servers.get(bridge);
    if (!server) {
      return Promise.reject(
        new FailedPreconditionError(`bridge ${bridge} has no DHCP server on this node`),
      );
    }
    return this.ensure({ ...server.spec, reservations });
  }

  /** Stops the bridge's dnsmasq (if any) and removes its files; true when one was running. */
  stop(bridge: string): Promise<boolean> {
    interfaceName(bridge, "bridge_name");
    return this.#queue.run(bridge, async () => {
      const server = this.#servers.get(bridge);
      this.#servers.delete(bridge);
      if (server) clearTimeout(server.restartTimer);
      const paths = server?.paths ?? dhcpPaths(this.root, bridge);
      const proc = server?.proc ?? await this.#find(paths);
      const wasRunning = !!proc?.alive;
      if (proc) await this.#terminate(proc);
      await Deno.remove(paths.dir, { recursive: true }).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
      if (wasRunning) this.#log.info("DHCP server stopped", { bridge });
      return wasRunning;
    });
  }

  /** Stops supervising (agent shutdown); the dnsmasq processes keep running. */
  close(): void {
    this.#closed = true;
    for (const s of this.#servers.values()) {
      clearTimeout(s.restartTimer);
      s.proc?.release();
    }
  }

  async #apply(server: Server): Promise<DhcpAction> {
    const { paths, spec } = server;
    await this.#prepareDir(paths.dir);
    const conf = dnsmasqConfig(spec, paths);
    const hosts = dnsmasqHosts(spec.reservations);
    server.proc = server.proc?.alive ? server.proc : await this.#find(paths);
    if (server.proc) this.#watch(server, server.proc);
    const leases = parseLeases(await readText(paths.leases));
    const stale = blockingLeases(leases, spec.reservations);
    const running = server.proc !== null;
    if (running && await readText(paths.conf) === conf && stale.length === 0) {
      if (await readText(paths.hosts) === hosts) return "unchanged";
      const offset = await fileSize(paths.log);
      await writeFileAtomic(paths.hosts, encoder.encode(hosts), { mode: 0o644 });
      server.proc!.kill("SIGHUP");
      await this.#waitLog(server, offset, `read ${paths.hosts}`);
      this.#log.info("DHCP reservations reloaded", {
        bridge: spec.bridge,
        reservations: spec.reservations.length,
      });
      return "reloaded";
    }
    if (server.proc) await this.#terminate(server.proc);
    server.proc = null;
    if (stale.length > 0) {
      // dnsmasq is stopped: its lease file is ours to edit until it starts again.
      const keep = parseLeases(await readText(paths.leases)).filter((l) =>
        !stale.some((s) => s.line === l.line)
      );
      await writeFileAtomic(
        paths.leases,
        encoder.encode(keep.map((l) => l.line + "\n").join("")),
        { mode: 0o644 },
      );
    }
    await writeFileAtomic(paths.conf, encoder.encode(conf), { mode: 0o644 });
    await writeFileAtomic(paths.hosts, encoder.encode(hosts), { mode: 0o644 });
    const proc = await this.#start(server);
    this.#log.info(running ? "DHCP server restarted" : "DHCP server started", {
      bridge: spec.bridge,
      pid: proc.pid,
      reservations: spec.reservations.length,
      dropped_leases: stale.length,
    });
    return running ? "restarted" : "started";
  }

  async #start(server: Server): Promise<DetachedProcess> {
    const { paths } = server;
    const offset = await fileSize(paths.log);
    const proc = DetachedProcess.start({
      argv: dnsmasqArgv(paths),
      outputFile: paths.log,
      prefix: this.ip.nsPrefix,
      identity: identityOf(paths),
    });
    await Deno.writeTextFile(paths.pid, `${proc.pid}\n`);
    server.proc = proc;
    server.startedAt = Date.now();
    try {
      await this.#waitLog(server, offset, "started, version");
    } catch (err) {
      proc.expectedExit = true;
      await proc.killAndWait().catch(() => {});
      server.proc = null;
      throw err;
    }
    this.#watch(server, proc);
    return proc;
  }

  /** Waits until dnsmasq's log shows `text` after `offset`; fails if dnsmasq dies first. */
  async #waitLog(server: Server, offset: number, text: string): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 10_000);
    for (;;) {
      const log = await readText(server.paths.log, offset);
      if (log.includes(text)) return;
      const proc = server.proc;
      if (!proc?.alive) {
        const exit = proc ? await proc.waitExit(1_000) : null;
        const tail = log.trim().split("\n").slice(-3).join(" | ");
        throw new UnavailableError(
          `dnsmasq for bridge ${server.spec.bridge} did not start: ${
            exit ? describeExit(exit, "dnsmasq") : "it is gone"
          }${tail ? `: ${tail}` : ""}`,
        );
      }
      if (Date.now() > deadline) {
        throw new UnavailableError(
          `dnsmasq for bridge ${server.spec.bridge} did not report "${text}" in time`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Restarts the server when its dnsmasq dies without being asked to. */
  #watch(server: Server, proc: DetachedProcess): void {
    if (this.#watched.has(proc)) return;
    this.#watched.add(proc);
    proc.exited.then((exit) => {
      if (server.proc !== proc || proc.expectedExit || this.#closed) return;
      if (this.#servers.get(server.spec.bridge) !== server) return;
      server.proc = null;
      if (Date.now() - server.startedAt > 30_000) server.failures = 0;
      const base = this.options.restartDelayMs ?? 500;
      const delay = Math.min(base * 2 ** server.failures, this.options.maxRestartDelayMs ?? 30_000);
      server.failures++;
      this.#log.warn("DHCP server died; restarting it", {
        bridge: server.spec.bridge,
        pid: proc.pid,
        exit: describeExit(exit, "dnsmasq"),
        delay_ms: delay,
      });
      server.restartTimer = setTimeout(() => {
        if (this.#closed || this.#servers.get(server.spec.bridge) !== server) return;
        this.#queue.run(server.spec.bridge, () => this.#apply(server)).catch((err) =>
          this.#log.error("could not restart a DHCP server", { bridge: server.spec.bridge, err })
        );
      }, delay);
    });
  }

  async #find(paths: DhcpPaths): Promise<DetachedProcess | null> {
    const pid = Number((await readText(paths.pid)).trim());
    return pid ? DetachedProcess.find(pid, identityOf(paths), this.options.pollMs ?? 500) : null;
  }

  async #terminate(proc: DetachedProcess): Promise<void> {
    proc.expectedExit = true;
    proc.kill("SIGTERM");
    if (!(await proc.waitExit(3_000))) await proc.killAndWait();
  }

  /** Creates the bridge's directory so dnsmasq, once it runs as `nobody`, can read its files. */
  async #prepareDir(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    await Deno.chmod(dir, 0o755);
    for (let d = dirname(dir);; d = dirname(d)) {
      const mode = (await Deno.stat(d)).mode ?? 0o755;
      if ((mode & 0o001) === 0) {
        throw new FailedPreconditionError(
          `dnsmasq reads its files as "nobody", which cannot enter ${d} (mode ${
            (mode & 0o777).toString(8)
          }); make it searchable by others (chmod o+x) or move the node's runtime directory`,
        );
      }
      if (d === "/") break;
    }
  }
}

function identityOf(paths: DhcpPaths): ProcessIdentity {
  return (argv) => argv.includes(`--conf-file=${paths.conf}`);
}

async function readText(path: string, offset = 0): Promise<string> {
  try {
    if (offset === 0) return await Deno.readTextFile(path);
    const file = await Deno.open(path);
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      return await new Response(file.readable).text();
    } catch (err) {
      file.close();
      throw err;
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
}

async function fileSize(path: string): Promise<number> {
  return await Deno.stat(path).then((s) => s.size, () => 0);
}
