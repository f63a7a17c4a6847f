/**
 * A fake qarax-node for control-plane tests: a nice-grpc server implementing VmService and
 * FileTransferService over an in-memory VM table, with the real node's error and auth
 * middleware and its validation of VM NICs, network attachments and DHCP reservation sets
 * (so what the control plane sends is what a real node accepts). It runs in its own process
 * (`fake_node_main.ts`; Deno 2.9's HTTP/2 is not safe with a gRPC client and server closing
 * sessions in one process), and tests drive it through `FakeNodeHandle`: script it (`fail`,
 * `delay`), observe it (`state`, `callsOf`), inject what a real node would report
 * (`poweroff`, `crash`, `forget`, `forgetNetwork`, also over WatchEvents), take it off the
 * network and back (`stop`/`restart`) or kill it (`kill`).
 */
import { createServer, type Server } from "nice-grpc";
import {
  AlreadyExistsError,
  type ErrorCode,
  FailedPreconditionError,
  NotFoundError,
  type QaraxError,
} from "../../shared/errors/errors.ts";
import {
  FileTransferServiceDefinition,
  node,
  toTimestamp,
  VmServiceDefinition,
} from "../../shared/proto/mod.ts";
import { authMiddleware, errorMiddleware } from "../../node/rpc/middleware.ts";
import { networkSpecFromRequest, reservationsForNetwork } from "../../node/net/spec.ts";
import { normalizeNic } from "../../node/vmm/spec.ts";
import { withUnimplemented } from "../../node/rpc/unimplemented.ts";
import { TcpFront } from "./tcp_front.ts";

const S = node.VmStatus;

/** A VM as the fake node knows it. */
export interface FakeVm {
  config: node.VmConfig.$Properties;
  status: node.VmStatus;
  reason: string;
  pid: number;
}

/** One RPC the fake received. */
export interface FakeCall {
  method: string;
  request: unknown;
}

type Script = { error?: QaraxError; delayMs?: number };

/** Options of a fake node. */
export interface FakeNodeOptions {
  token?: string;
  hostname?: string;
  architecture?: string;
  totalCpus?: number;
  totalMemoryBytes?: number;
  /** Address the gRPC server listens on (default 127.0.0.1). */
  listen?: string;
}

/** Stable JSON of a VM config, to tell "same spec" from "different spec". */
function specKey(c: node.VmConfig.$Properties): string {
  return Array.from(node.VmConfig.encode(c).finish()).join(",");
}

/** The fake node. */
export class FakeNode {
  readonly vms = new Map<string, FakeVm>();
  readonly calls: FakeCall[] = [];
  readonly networks = new Map<string, node.AttachNetworkRequest.$Properties>();
  readonly pools = new Map<string, node.AttachStoragePoolRequest.$Properties>();
  readonly disks = new Map<string, node.CreateDiskRequest.$Properties>();
  readonly options: Required<FakeNodeOptions>;
  port = 0;
  #server: Server | undefined;
  #front: TcpFront | undefined;
  #scripts = new Map<string, Script[]>();
  #delays = new Map<string, number>();
  #watchers = new Set<(e: node.VmEvent.$Properties) => void>();
  #ends = new Set<() => void>();
  #nextPid = 40000;

  constructor(options: FakeNodeOptions = {}) {
    this.options = {
      token: options.token ?? "",
      hostname: options.hostname ?? "fake",
      architecture: options.architecture ?? "x86_64",
      totalCpus: options.totalCpus ?? 8,
      totalMemoryBytes: options.totalMemoryBytes ?? 16 * 1024 ** 3,
      listen: options.listen ?? "127.0.0.1",
    };
  }

  /** Starts serving on `listen` (a free port the first time, the same port after). */
  async start(): Promise<this> {
    if (!this.#server) {
      const server = createServer().use(errorMiddleware).use(authMiddleware(this.options.token));
      server.add(VmServiceDefinition, this.#vmService());
      server.add(FileTransferServiceDefinition, this.#fileService());
      this.#server = server;
      this.#front = new TcpFront(
        await server.listen("127.0.0.1:0"),
        this.port,
        this.options.listen,
      );
    }
    this.#front!.open();
    this.port = this.#front!.port;
    return this;
  }

  /** Stops serving (open event streams break), as a crashed agent would. */
  stop(): Promise<void> {
    // The gRPC server itself stays up behind the front: shutting it down would send GOAWAY.
    this.#front?.cut();
    for (const end of this.#ends) end();
    this.#ends.clear();
    this.#watchers.clear();
    return Promise.resolve();
  }

  /** Serves again on the same port; VMs are kept (they outlive the agent). */
  restart(): Promise<this> {
    return this.start();
  }

  get running(): boolean {
    return this.#front?.isOpen ?? false;
  }

  /** The next `times` calls of `method` fail with `error`. */
  fail(method: string, error: QaraxError, times = 1): void {
    const list = this.#scripts.get(method) ?? [];
    for (let i = 0; i < times; i++) list.push({ error });
    this.#scripts.set(method, list);
  }

  /** Every call of `method` takes `ms` first (0 removes the delay). */
  delay(method: string, ms: number): void {
    this.#delays.set(method, ms);
  }

  /** Calls of `method` so far. */
  callsOf(method: string): FakeCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** The guest powered off: the VMM is gone, the VM is shut down. */
  poweroff(vmId: string): void {
    this.#set(
      vmId,
      S.VM_STATUS_SHUTDOWN,
      "guest powered off",
      node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT,
    );
  }

  /** The VMM died. */
  crash(vmId: string, reason = "killed by signal SIGKILL"): void {
    this.#set(vmId, S.VM_STATUS_CRASHED, reason, node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT);
  }

  /** Changes a VM's status behind the control plane's back, without an event. */
  setSilently(vmId: string, status: node.VmStatus, reason = ""): void {
    const vm = this.vms.get(vmId);
    if (vm) Object.assign(vm, { status, reason });
  }

  /** Forgets a VM (as if its runtime directory were wiped). */
  forget(vmId: string): void {
    this.vms.delete(vmId);
  }

  /** Forgets a network attachment (as if the node's state were wiped). */
  forgetNetwork(bridge: string): void {
    this.networks.delete(bridge);
  }

  #set(vmId: string, status: node.VmStatus, reason: string, kind: node.VmEventKind) {
    const vm = this.vms.get(vmId);
    if (!vm) return;
    vm.status = status;
    vm.reason = reason;
    if (status !== S.VM_STATUS_RUNNING && status !== S.VM_STATUS_PAUSED) vm.pid = 0;
    const event: node.VmEvent.$Properties = {
      vmId,
      time: toTimestamp(new Date()),
      kind,
      status,
      message: reason,
    };
    for (const w of this.#watchers) w(event);
  }

  async #enter(method: string, request: unknown): Promise<void> {
    this.calls.push({ method, request });
    const delay = this.#delays.get(method);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    const script = this.#scripts.get(method)?.shift();
    if (script?.error) throw script.error;
  }

  #vm(id: string | null | undefined): FakeVm {
    const vm = this.vms.get(id ?? "");
    if (!vm) throw new NotFoundError(`vm ${id} not found`);
    return vm;
  }

  #state(vm: FakeVm): node.VmState.$Properties {
    return { config: vm.config, status: vm.status, reason: vm.reason, vmmPid: vm.pid };
  }

  #need(vm: FakeVm, allowed: node.VmStatus[], what: string) {
    if (!allowed.includes(vm.status)) {
      throw new FailedPreconditionError(`cannot ${what}: vm is ${S[vm.status]}`);
    }
  }

  #running(vm: FakeVm, id: string) {
    vm.pid = this.#nextPid++;
    this.#set(id, S.VM_STATUS_RUNNING, "", node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED);
  }

  #vmService() {
    const STATE = node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED;
    return withUnimplemented(VmServiceDefinition, {
      getNodeInfo: async () => {
        await this.#enter("getNodeInfo", {});
        return {
          hostname: this.options.hostname,
          cloudHypervisorVersion: "v53.0-emulated",
          kernelVersion: "6.1.0-fake",
          totalCpus: this.options.totalCpus,
          totalMemoryBytes: this.options.totalMemoryBytes,
          availableMemoryBytes: this.options.totalMemoryBytes / 2,
          loadAverage_1m: 0.5,
          diskTotalBytes: 100 * 1024 ** 3,
          diskAvailableBytes: 50 * 1024 ** 3,
          nodeVersion: "0.1.0",
          architecture: this.options.architecture,
          kvmAvailable: false,
          cloudHypervisorEmulated: true,
          vmCount: this.vms.size,
        };
      },
      createVM: async (req) => {
        await this.#enter("createVM", req);
        // NICs as the real node checks them (other parts may be minimal in tests).
        (req.networks ?? []).forEach((n, i) => normalizeNic(req.vmId ?? "", n, i));
        const id = req.vmId ?? "";
        const existing = this.vms.get(id);
        if (existing) {
          if (specKey(existing.config) !== specKey(req)) {
            throw new AlreadyExistsError(`vm ${id} exists with a different spec`);
          }
          return this.#state(existing);
        }
        // A plain copy (decoded messages are class instances with prototype defaults).
        const config = structuredClone(req) as node.VmConfig.$Properties;
        const vm: FakeVm = { config, status: S.VM_STATUS_CREATED, reason: "", pid: 0 };
        this.vms.set(id, vm);
        return this.#state(vm);
      },
      startVM: async (req) => {
        await this.#enter("startVM", req);
        const vm = this.#vm(req.id);
        this.#need(vm, [S.VM_STATUS_CREATED, S.VM_STATUS_SHUTDOWN, S.VM_STATUS_CRASHED], "start");
        this.#running(vm, req.id!);
        return {};
      },
      stopVM: async (req) => {
        await this.#enter("stopVM", req);
        const vm = this.#vm(req.id);
        if (vm.status === S.VM_STATUS_RUNNING || vm.status === S.VM_STATUS_PAUSED) {
          this.#set(req.id!, S.VM_STATUS_SHUTDOWN, "", STATE);
        }
        return {};
      },
      forceStopVM: async (req) => {
        await this.#enter("forceStopVM", req);
        const vm = this.#vm(req.id);
        if (vm.status !== S.VM_STATUS_SHUTDOWN && vm.status !== S.VM_STATUS_CREATED) {
          this.#set(req.id!, S.VM_STATUS_SHUTDOWN, "", STATE);
        }
        return {};
      },
      pauseVM: async (req) => {
        await this.#enter("pauseVM", req);
        const vm = this.#vm(req.id);
        this.#need(vm, [S.VM_STATUS_RUNNING], "pause");
        this.#set(req.id!, S.VM_STATUS_PAUSED, "", STATE);
        return {};
      },
      resumeVM: async (req) => {
        await this.#enter("resumeVM", req);
        const vm = this.#vm(req.id);
        this.#need(vm, [S.VM_STATUS_PAUSED], "resume");
        this.#set(req.id!, S.VM_STATUS_RUNNING, "", STATE);
        return {};
      },
      rebootVM: async (req) => {
        await this.#enter("rebootVM", req);
        const vm = this.#vm(req.id);
        this.#need(vm, [S.VM_STATUS_RUNNING], "reboot");
        this.#set(req.id!, S.VM_STATUS_RUNNING, "rebooted", STATE);
        return {};
      },
      deleteVM: async (req) => {
        await this.#enter("deleteVM", req);
        this.vms.delete(req.id ?? "");
        return {};
      },
      snapshotVM: async (req) => {
        await this.#enter("snapshotVM", req);
        const vm = this.#vm(req.vmId);
        this.#need(vm, [S.VM_STATUS_RUNNING, S.VM_STATUS_PAUSED], "snapshot");
        return {};
      },
      restoreVM: async (req) => {
        await this.#enter("restoreVM", req);
        const vm = this.#vm(req.vmId);
        this.#need(
          vm,
          [S.VM_STATUS_CREATED, S.VM_STATUS_SHUTDOWN, S.VM_STATUS_CRASHED],
          "restore",
        );
        // Like the real node: CH restores paused, the node resumes it.
        this.#running(vm, req.vmId!);
        return {};
      },
      getVmInfo: async (req) => {
        await this.#enter("getVmInfo", req);
        return this.#state(this.#vm(req.id));
      },
      listVms: async () => {
        await this.#enter("listVms", {});
        return { vms: [...this.vms.values()].map((vm) => this.#state(vm)) };
      },
      attachNetwork: async (req) => {
        await this.#enter("attachNetwork", req);
        // The real node's validation: the control plane must only send what a node accepts.
        networkSpecFromRequest(req);
        this.networks.set(req.bridgeName ?? "", structuredClone(req));
        return {};
      },
      setDhcpReservations: async (req) => {
        await this.#enter("setDhcpReservations", req);
        const att = this.networks.get(req.bridgeName ?? "");
        if (!att) {
          throw new FailedPreconditionError(`no network is attached on bridge ${req.bridgeName}`);
        }
        const spec = networkSpecFromRequest(att);
        reservationsForNetwork(req.reservations ?? [], spec);
        att.reservations = structuredClone(req.reservations ?? []);
        return {};
      },
      detachNetwork: async (req) => {
        await this.#enter("detachNetwork", req);
        this.networks.delete(req.bridgeName ?? "");
        return {};
      },
      attachStoragePool: async (req) => {
        await this.#enter("attachStoragePool", req);
        this.pools.set(req.poolId ?? "", req);
        return { success: true, message: "" };
      },
      detachStoragePool: async (req) => {
        await this.#enter("detachStoragePool", req);
        this.pools.delete(req.poolId ?? "");
        return {};
      },
      resizeVm: async (req) => {
        await this.#enter("resizeVm", req);
        const vm = this.#vm(req.vmId);
        const cpus = vm.config.cpus ?? {};
        const vcpus = req.desiredVcpus ?? undefined;
        if (vcpus !== undefined && (vcpus < 1 || vcpus > (cpus.maxVcpus ?? cpus.bootVcpus ?? 1))) {
          throw new FailedPreconditionError(`cannot resize to ${vcpus} vCPUs`);
        }
        vm.config.cpus = { ...cpus, bootVcpus: vcpus ?? cpus.bootVcpus };
        const ram = req.desiredRam === undefined || req.desiredRam === null
          ? undefined
          : Number(req.desiredRam);
        if (ram !== undefined) vm.config.memory = { ...vm.config.memory, size: ram };
        return {};
      },
      resizeDisk: async (req) => {
        await this.#enter("resizeDisk", req);
        if (req.vmId) {
          const vm = this.#vm(req.vmId);
          if (!(vm.config.disks ?? []).some((d) => d.id === req.diskId)) {
            throw new FailedPreconditionError(`vm ${req.vmId} has no disk ${req.diskId}`);
          }
        }
        return {};
      },
      watchEvents: (req, ctx) => this.#watch(req, ctx.signal),
    });
  }

  async *#watch(
    req: node.WatchEventsRequest.$Properties,
    signal: AbortSignal,
  ): AsyncGenerator<node.VmEvent.$Properties> {
    await this.#enter("watchEvents", req);
    const queue: node.VmEvent.$Properties[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const watcher = (e: node.VmEvent.$Properties) => {
      if (req.vmId && e.vmId !== req.vmId) return;
      queue.push(e);
      wake?.();
    };
    const end = () => {
      ended = true;
      wake?.();
    };
    this.#watchers.add(watcher);
    this.#ends.add(end);
    signal.addEventListener("abort", end);
    try {
      while (!ended) {
        while (queue.length) yield queue.shift()!;
        if (ended) break;
        await new Promise<void>((r) => wake = r);
        wake = undefined;
      }
    } finally {
      this.#watchers.delete(watcher);
      this.#ends.delete(end);
    }
  }

  async *#createDisk(
    req: node.CreateDiskRequest.$Properties,
  ): AsyncGenerator<node.TransferResponse.$Properties> {
    await this.#enter("createDisk", req);
    if (this.disks.has(req.path ?? "")) throw new AlreadyExistsError(`${req.path} exists`);
    const total = Number(req.sizeBytes ?? 0) || 4096;
    for (const part of [1, 2, 3]) {
      yield {
        transferId: req.transferId,
        bytesWritten: Math.floor((total * part) / 4),
        totalBytes: total,
        isFinal: false,
      };
    }
    this.disks.set(req.path ?? "", req);
    yield {
      transferId: req.transferId,
      success: true,
      bytesWritten: total,
      totalBytes: total,
      isFinal: true,
    };
  }

  #fileService() {
    return withUnimplemented(FileTransferServiceDefinition, {
      createDisk: (req) => this.#createDisk(req),
      deleteDisk: async (req) => {
        await this.#enter("deleteDisk", req);
        this.disks.delete(req.path ?? "");
        return {};
      },
      deleteSnapshot: async (req) => {
        await this.#enter("deleteSnapshot", req);
        return {};
      },
    });
  }
}

/** What the fake reports about itself. */
export interface FakeState {
  vms: Record<string, FakeVm>;
  calls: FakeCall[];
  networks: Record<string, node.AttachNetworkRequest.$Properties>;
  pools: Record<string, node.AttachStoragePoolRequest.$Properties>;
  disks: Record<string, node.CreateDiskRequest.$Properties>;
  running: boolean;
}

/** The fake's state as plain JSON. */
export function fakeState(f: FakeNode): FakeState {
  return JSON.parse(JSON.stringify({
    vms: Object.fromEntries(f.vms),
    calls: f.calls,
    networks: Object.fromEntries(f.networks),
    pools: Object.fromEntries(f.pools),
    disks: Object.fromEntries(f.disks),
    running: f.running,
  }));
}

const MAIN = new URL("./fake_node_main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** A fake node running in its own process. */
export class FakeNodeHandle implements AsyncDisposable {
  constructor(
    readonly port: number,
    readonly controlPort: number,
    readonly child: Deno.ChildProcess,
    readonly output: () => string,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  async #post(path: string, body: unknown = {}): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${this.controlPort}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`fake node ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** The next `times` calls of `method` fail with a domain error of `code`. */
  async fail(method: string, code: ErrorCode, message: string, times = 1): Promise<void> {
    await this.#post("/fail", { method, code, message, times });
  }

  /** Every call of `method` takes `ms` first (0 removes the delay). */
  async delay(method: string, ms: number): Promise<void> {
    await this.#post("/delay", { method, ms });
  }

  /** The guest powers off (VMM gone, VM shut down; a PROCESS_EXIT event). */
  async poweroff(vmId: string): Promise<void> {
    await this.#post("/poweroff", { vm_id: vmId });
  }

  /** The VMM dies. */
  async crash(vmId: string, reason?: string): Promise<void> {
    await this.#post("/crash", { vm_id: vmId, reason });
  }

  /** Changes a VM's status without an event. */
  async setSilently(vmId: string, status: node.VmStatus, reason = ""): Promise<void> {
    await this.#post("/set", { vm_id: vmId, status, reason });
  }

  /** Forgets a VM. */
  async forget(vmId: string): Promise<void> {
    await this.#post("/forget", { vm_id: vmId });
  }

  /** Forgets a network attachment (as if the node's state were wiped). */
  async forgetNetwork(bridge: string): Promise<void> {
    await this.#post("/forget-network", { bridge });
  }

  /** Everything the fake knows. */
  async state(): Promise<FakeState> {
    return await this.#post("/state") as FakeState;
  }

  /** Calls of `method` so far. */
  async callsOf(method: string): Promise<FakeCall[]> {
    return (await this.state()).calls.filter((c) => c.method === method);
  }

  /** Stops serving gRPC (open streams break); the process and its VMs stay. */
  async stop(): Promise<void> {
    await this.#post("/stop");
  }

  /** Serves gRPC again on the same port. */
  async restart(): Promise<void> {
    await this.#post("/restart");
  }

  /** SIGKILL, like a crashed agent (no goodbye on the wire). */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.child.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/**
 * Starts a fake node in its own process; dispose it with `await using`. With `netns` it runs
 * inside that network namespace (its control API is then out of reach: only gRPC on `listen`).
 */
export async function startFakeNode(
  options: FakeNodeOptions = {},
  where: { netns?: string } = {},
): Promise<FakeNodeHandle> {
  const args = ["run", "-A", "--quiet", "--config", CONFIG, MAIN, JSON.stringify(options)];
  const child = new Deno.Command(where.netns ? "ip" : Deno.execPath(), {
    args: where.netns ? ["netns", "exec", where.netns, Deno.execPath(), ...args] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const ready = Promise.withResolvers<[number, number]>();
  (async () => {
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      const m = /READY (\d+) (\d+)/.exec(out);
      if (m) ready.resolve([Number(m[1]), Number(m[2])]);
    }
    ready.reject(new Error(`fake node exited before it was ready: ${out}`));
  })();
  (async () => {
    for await (const chunk of child.stderr) out += decoder.decode(chunk, { stream: true });
  })();
  const timer = setTimeout(
    () => ready.reject(new Error(`fake node did not start: ${out}`)),
    30_000,
  );
  try {
    const [port, controlPort] = await ready.promise;
    return new FakeNodeHandle(port, controlPort, child, () => out);
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
