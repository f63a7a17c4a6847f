/**
 * A fake qarax-node for control-plane tests: an in-process nice-grpc server implementing
 * VmService and FileTransferService over an in-memory VM table, with the real node's error
 * and auth middleware. Tests script it (`fail`, `delay`), observe it (`calls`), and inject
 * what a real node would report (`poweroff`, `crash`, `forget`), including over WatchEvents.
 * `stop()`/`restart()` take it off the network and back on the same port.
 */
import { createServer, type Server } from "nice-grpc";
import {
  AlreadyExistsError,
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
import { withUnimplemented } from "../../node/rpc/unimplemented.ts";

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
    };
  }

  /** Starts serving on 127.0.0.1 (a free port the first time, the same port after). */
  async start(): Promise<this> {
    const server = createServer().use(errorMiddleware).use(authMiddleware(this.options.token));
    server.add(VmServiceDefinition, this.#vmService());
    server.add(FileTransferServiceDefinition, this.#fileService());
    this.port = await server.listen(`127.0.0.1:${this.port}`);
    this.#server = server;
    return this;
  }

  /** Stops serving (open event streams break), as a crashed agent would. */
  async stop(): Promise<void> {
    for (const end of this.#ends) end();
    this.#ends.clear();
    this.#watchers.clear();
    const s = this.#server;
    this.#server = undefined;
    s?.forceShutdown();
    await new Promise((r) => setTimeout(r, 10));
  }

  /** Serves again on the same port; VMs are kept (they outlive the agent). */
  restart(): Promise<this> {
    return this.start();
  }

  get running(): boolean {
    return this.#server !== undefined;
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
        const id = req.vmId ?? "";
        const existing = this.vms.get(id);
        if (existing) {
          if (specKey(existing.config) !== specKey(req)) {
            throw new AlreadyExistsError(`vm ${id} exists with a different spec`);
          }
          return this.#state(existing);
        }
        const vm: FakeVm = { config: req, status: S.VM_STATUS_CREATED, reason: "", pid: 0 };
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
        this.networks.set(req.bridgeName ?? "", req);
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
    });
  }
}

/** Starts a fake node; dispose it with `await using`. */
export async function startFakeNode(
  options: FakeNodeOptions = {},
): Promise<FakeNode & AsyncDisposable> {
  const fake = await new FakeNode(options).start();
  return Object.assign(fake, { [Symbol.asyncDispose]: () => fake.stop() });
}
