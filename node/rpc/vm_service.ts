/**
 * The VmService: node info, the VM lifecycle, devices and sizes, snapshots, event streaming,
 * and attaching storage pools and networks. Thin: each RPC validates what is specific to the
 * wire (required sub-messages, enums), calls the VM, network or pool manager, and converts the
 * answer; domain errors become gRPC statuses in the server's middleware. RPCs this node does
 * not implement answer UNIMPLEMENTED.
 */
import type { CallContext, ServiceImplementation } from "nice-grpc";
import { InvalidArgumentError, UnimplementedError } from "../../shared/errors/errors.ts";
import { node, toTimestamp, VmServiceDefinition } from "../../shared/proto/mod.ts";
import type { EventBus, VmEvent, VmEventKind } from "../events/bus.ts";
import { collectHostFacts } from "../info.ts";
import type { NetworkManager } from "../net/manager.ts";
import { bridgeName, detachSpecFromRequest, networkSpecFromRequest } from "../net/spec.ts";
import { poolId, type PoolManager, poolSpecFromRequest } from "../storage/pools.ts";
import { pipeSerialSocket, readConsoleLog, serialSocketOf } from "../vms/console.ts";
import type { VmManager, VmState } from "../vms/manager.ts";
import type { VmStatusName } from "../vms/status.ts";
import { withUnimplemented } from "./unimplemented.ts";

/** What the VmService works with. */
export interface VmServiceDeps {
  runtimeDir: string;
  vmmBinary: string;
  pools: PoolManager;
  /** Without these (tests of other services), only GetNodeInfo is served. */
  vms?: { manager: VmManager; networks: NetworkManager; bus: EventBus };
}

const STATUS: Record<VmStatusName, node.VmStatus> = {
  unknown: node.VmStatus.VM_STATUS_UNKNOWN,
  created: node.VmStatus.VM_STATUS_CREATED,
  running: node.VmStatus.VM_STATUS_RUNNING,
  paused: node.VmStatus.VM_STATUS_PAUSED,
  shutdown: node.VmStatus.VM_STATUS_SHUTDOWN,
  crashed: node.VmStatus.VM_STATUS_CRASHED,
};

const KIND: Record<VmEventKind, node.VmEventKind> = {
  vmm: node.VmEventKind.VM_EVENT_KIND_VMM,
  process_exit: node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT,
  state_changed: node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED,
};

/** A VmState message for the manager's view of a VM. */
export function toVmState(s: VmState): node.VmState.$Properties {
  return {
    config: s.config,
    status: STATUS[s.status],
    memoryActualSize: s.memoryActualSize,
    reason: s.reason,
    vmmPid: s.vmmPid,
  };
}

/** A VmEvent message for a bus event. */
export function toVmEvent(e: VmEvent): node.VmEvent.$Properties {
  return {
    vmId: e.vmId,
    time: toTimestamp(e.time),
    kind: KIND[e.kind],
    source: e.source,
    event: e.event,
    properties: e.properties,
    status: STATUS[e.status],
    message: e.message,
    sequence: e.sequence,
    incarnation: e.incarnation,
  };
}

function required<T>(value: T | null | undefined, field: string): T {
  if (value === null || value === undefined) throw InvalidArgumentError.field(field, "required");
  return value;
}

function cloudHypervisorOnly(h: node.HypervisorType | null | undefined): void {
  if ((h ?? 0) !== node.HypervisorType.HYPERVISOR_TYPE_CLOUD_HV) {
    throw new UnimplementedError("this node only runs Cloud Hypervisor VMs");
  }
}

const EMPTY = {};

/** The VmService implementation. */
export function vmService(deps: VmServiceDeps): ServiceImplementation<typeof VmServiceDefinition> {
  const info = async (): Promise<node.NodeInfo.$Properties> => {
    const f = await collectHostFacts(deps.runtimeDir, deps.vmmBinary);
    return {
      hostname: f.hostname,
      cloudHypervisorVersion: f.cloudHypervisorVersion,
      kernelVersion: f.kernelVersion,
      totalCpus: f.totalCpus,
      totalMemoryBytes: f.totalMemoryBytes,
      availableMemoryBytes: f.availableMemoryBytes,
      loadAverage_1m: f.loadAverage1m,
      diskTotalBytes: f.diskTotalBytes,
      diskAvailableBytes: f.diskAvailableBytes,
      nodeVersion: f.nodeVersion,
      architecture: f.architecture,
      kvmAvailable: f.kvmAvailable,
      cloudHypervisorEmulated: f.cloudHypervisorEmulated,
      vmCount: deps.vms?.manager.count ?? 0,
    };
  };
  if (!deps.vms) return withUnimplemented(VmServiceDefinition, { getNodeInfo: info });
  const { manager, networks, bus } = deps.vms;
  const { pools } = deps;

  return withUnimplemented(VmServiceDefinition, {
    getNodeInfo: info,

    async createVM(req) {
      return toVmState(await manager.create(req));
    },
    async startVM(req) {
      await manager.start(req.id);
      return EMPTY;
    },
    async stopVM(req) {
      await manager.stop(req.id, req.timeoutMs ?? 0);
      return EMPTY;
    },
    async forceStopVM(req) {
      await manager.forceStop(req.id);
      return EMPTY;
    },
    async pauseVM(req) {
      await manager.pause(req.id);
      return EMPTY;
    },
    async resumeVM(req) {
      await manager.resume(req.id);
      return EMPTY;
    },
    async rebootVM(req) {
      await manager.reboot(req.id);
      return EMPTY;
    },
    async deleteVM(req) {
      await manager.delete(req.id);
      return EMPTY;
    },
    async snapshotVM(req) {
      await manager.snapshot(req.vmId, req.snapshotUrl);
      return EMPTY;
    },
    async restoreVM(req) {
      cloudHypervisorOnly(req.hypervisor);
      await manager.restore(req.vmId, req.sourceUrl);
      return EMPTY;
    },
    async getVmInfo(req) {
      return toVmState(await manager.info(req.id));
    },
    listVms() {
      return Promise.resolve({ vms: manager.list().map(toVmState) });
    },
    async getVmCounters(req) {
      const counters = await manager.counters(req.id);
      const out: Record<string, node.DeviceCounters.$Properties> = {};
      for (const [dev, values] of Object.entries(counters)) out[dev] = { values };
      return { counters: out };
    },

    readConsoleLog(req) {
      return readConsoleLog(manager.serial(req.id));
    },
    async *attachConsole(requests: AsyncIterable<node.ConsoleInput>, context: CallContext) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) return;
      const id = first.value.vmId;
      if (!id) throw InvalidArgumentError.field("vm_id", "required in the first message");
      const socket = serialSocketOf(id, manager.serial(id));
      // Resize messages are ignored: CH's socket serial carries bytes only, no window size.
      async function* data(): AsyncGenerator<Uint8Array> {
        if (!first.done && !first.value.resize) yield first.value.data;
        for (let r = await it.next(); !r.done; r = await it.next()) {
          if (!r.value.resize) yield r.value.data;
        }
      }
      for await (const out of pipeSerialSocket(id, socket, data(), context.signal)) {
        yield { data: out };
      }
    },

    async addDiskDevice(req) {
      await manager.addDisk(req.vmId, required(req.config, "config"));
      return EMPTY;
    },
    async removeDiskDevice(req) {
      await manager.removeDisk(req.vmId, req.deviceId);
      return EMPTY;
    },
    async addNetworkDevice(req) {
      await manager.addNic(req.vmId, required(req.config, "config"));
      return EMPTY;
    },
    async removeNetworkDevice(req) {
      await manager.removeNic(req.vmId, req.deviceId);
      return EMPTY;
    },
    async resizeVm(req) {
      await manager.resize(req.vmId, {
        vcpus: req.desiredVcpus ?? undefined,
        ramBytes: req.desiredRam ?? undefined,
      });
      return EMPTY;
    },
    async resizeDisk(req) {
      await manager.resizeDisk({
        vmId: req.vmId,
        diskId: req.diskId,
        path: req.path,
        newSize: req.newSize,
      });
      return EMPTY;
    },

    async attachStoragePool(req) {
      const pool = await pools.attach(poolSpecFromRequest(req));
      return { success: true, message: `pool ${pool.id} attached at ${pool.path}` };
    },
    async detachStoragePool(req) {
      await pools.detach(poolId(req.poolId));
      return EMPTY;
    },
    async attachNetwork(req) {
      await networks.attach(networkSpecFromRequest(req));
      return EMPTY;
    },
    async detachNetwork(req) {
      await networks.detach(detachSpecFromRequest(req));
      return EMPTY;
    },
    async setDhcpReservations(req) {
      await networks.setReservations(bridgeName(req.bridgeName ?? ""), req.reservations ?? []);
      return EMPTY;
    },

    async *watchEvents(req: node.WatchEventsRequest, context: CallContext) {
      const resume = req.incarnation
        ? { incarnation: req.incarnation, afterSequence: Number(req.afterSequence ?? 0) }
        : undefined;
      for await (const e of bus.subscribe({ vmId: req.vmId, resume, signal: context.signal })) {
        yield toVmEvent(e);
      }
    },
  });
}
