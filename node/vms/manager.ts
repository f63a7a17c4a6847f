/**
 * The VM manager: one per node, owning every VM under the runtime dir. It implements the
 * lifecycle the VmService RPCs expose (create, start, graceful and forced stop, pause, resume,
 * reboot, delete, hotplug, resize, snapshot, restore), re-adopts running VMMs after an agent
 * restart, and keeps each VM's status current from the VMM's events and process exits.
 *
 * Operations on one VM run one at a time (a keyed serial queue); reads (GetVmInfo, ListVms) do
 * not wait for them. ForceStopVM and DeleteVM interrupt a boot or graceful stop in progress.
 * Wrong-state calls are FailedPrecondition, unknown VMs NotFound.
 */
import { basename, dirname } from "node:path";
import { KeyedSerialQueue } from "../../shared/async/serial.ts";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { logger } from "../../shared/log/logger.ts";
import { absolutePath, deviceId, vmId as checkVmId } from "../../shared/net/names.ts";
import type { node } from "../../shared/proto/mod.ts";
import type { EventBus } from "../events/bus.ts";
import type { NetworkManager } from "../net/manager.ts";
import { MAX_NIC_INDEX } from "../net/tap.ts";
import { isWithin } from "../storage/paths.ts";
import { resizeDisk } from "../storage/disks.ts";
import type { PoolManager, StoragePool } from "../storage/pools.ts";
import { vmmApiErrorOf, waitForVmm } from "../vmm/client.ts";
import { describeExit, type VmmExit, VmmProcess } from "../vmm/process.ts";
import {
  createVmDir,
  listVmDirs,
  removeVmDir,
  tailLines,
  type VmPaths,
  vmPaths,
} from "../vmm/runtime_dir.ts";
import {
  buildChConfig,
  chDisk,
  chNet,
  hasManagedDevice,
  isMacvtapNic,
  type NicSpec,
  normalizeDisk,
  normalizeNic,
  normalizeVmConfig,
  SEED_DISK_ID,
  serialTarget,
  specKey,
  tapIndex,
  type VmSpec,
} from "../vmm/spec.ts";
import type { RestoredNetConfig, SerialConfig, VmCounters, VmInfo } from "../vmm/types.ts";
import { closeFd } from "../sys/libc.ts";
import { readBook, readSpecFile, VmInstance } from "./instance.ts";
import { bindDisk, bindHostResources, bindNic } from "./resources.ts";
import { isStopped, statusFromChState, statusWithoutVmm, type VmStatusName } from "./status.ts";

/** What the node reports about one VM. */
export interface VmState {
  config: VmSpec;
  status: VmStatusName;
  memoryActualSize?: number;
  reason: string;
  vmmPid: number;
}

export interface VmManagerOptions {
  runtimeDir: string;
  vmmBinary: string;
  pools: PoolManager;
  networks: NetworkManager;
  bus: EventBus;
  /** Default guest grace period of StopVM. */
  stopTimeoutMs: number;
  /** How long ForceStopVM/DeleteVM wait for the VMM to answer before killing it. */
  forceStopTimeoutMs: number;
  /** Environment of VMM processes (default: the agent's). */
  vmmEnv?: Record<string, string>;
  /** How often adopted VMMs are checked and event files polled (watchers do most of it). */
  pollMs?: number;
  /** How long a new VMM may take to answer its first ping. */
  vmmStartTimeoutMs?: number;
}

/** Outcome of `recover()`. */
export interface RecoveryReport {
  adopted: string[];
  crashed: string[];
  stopped: string[];
  rolledBack: string[];
  orphanTaps: string[];
}

const MAX_SOCKET_PATH = 107;

function fileUrlDir(url: string, field: string): string {
  if (!url.startsWith("file://")) {
    throw InvalidArgumentError.field(
      field,
      "must be a file:// URL of a directory in a storage pool",
    );
  }
  const dir = decodeURIComponent(url.slice("file://".length)).replace(/(.)\/+$/, "$1");
  return absolutePath(dir, field);
}

/** The VMs of this node. */
export class VmManager {
  readonly #vms = new Map<string, VmInstance>();
  readonly #queue = new KeyedSerialQueue();
  readonly #log = logger().child({ component: "vms" });
  #watcher: Deno.FsWatcher | null = null;
  #poll: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(readonly options: VmManagerOptions) {}

  /** Number of VMs on the node. */
  get count(): number {
    return this.#vms.size;
  }

  // ---- reads -------------------------------------------------------------------------------

  /** Every VM with its tracked status (kept current by events and process watchers). */
  list(): VmState[] {
    return [...this.#vms.values()].sort((a, b) => a.id.localeCompare(b.id)).map((i) =>
      this.#state(i)
    );
  }

  /**
   * One VM, its status checked with the VMM when it answers within 2 s. While an operation on
   * the VM runs (a boot can block CH's API for long), the tracked status is the answer.
   */
  async info(id: string): Promise<VmState> {
    const inst = this.#require(checkVmId(id));
    if (inst.vmmAlive && inst.reads && !inst.broken && !inst.current) {
      const version = inst.statusVersion;
      try {
        const info = await inst.reads.info();
        inst.memoryActualSize = info.memory_actual_size;
        await inst.pump();
        if (inst.statusVersion === version && inst.vmmAlive) {
          const booted = inst.book.booted || info.state === "Running" || info.state === "Paused";
          await inst.setStatus(statusFromChState(info.state, booted));
        }
      } catch (err) {
        this.#log.debug("vm.info failed; answering from tracked state", { vm_id: id, err });
      }
    }
    return this.#state(inst);
  }

  /** `vm.counters` of a booted VM. */
  async counters(id: string): Promise<VmCounters> {
    const inst = this.#require(checkVmId(id));
    inst.requireVmm();
    return await this.#ch(inst, () => inst.reads!.counters());
  }

  /** Ids of the VMs with a disk, kernel or initramfs inside `pool`. */
  poolUsers(pool: StoragePool): string[] {
    const users: string[] = [];
    for (const inst of this.#vms.values()) {
      const s = inst.spec;
      const paths = [
        s.payload?.kernel,
        s.payload?.initramfs,
        ...(s.disks ?? []).map((d) => d.path),
      ];
      if (paths.some((p) => p && isWithin(p, pool.path))) users.push(inst.id);
    }
    return users;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Creates the VM: validates and stores the spec, builds its host resources (taps, seed),
   * starts its VMM and `vm.create`s it. Repeating it with the same spec returns the VM; a
   * different spec for an existing id is AlreadyExists. A failure leaves nothing behind.
   */
  create(request: node.VmConfig.$Properties): Promise<VmState> {
    const spec = normalizeVmConfig(request);
    const id = spec.vmId!;
    const paths = vmPaths(this.options.runtimeDir, id);
    if (paths.apiSocket.length > MAX_SOCKET_PATH) {
      throw InvalidArgumentError.field("vm_id", "too long for this node's runtime directory");
    }
    return this.#run(id, async () => {
      const existing = this.#vms.get(id);
      if (existing) {
        if (specKey(existing.files.requested) !== specKey(spec)) {
          throw new AlreadyExistsError(`VM ${id} already exists with a different spec`);
        }
        return this.#state(existing);
      }
      await createVmDir(paths);
      const inst = new VmInstance(
        id,
        paths,
        {
          requested: spec,
          spec: structuredClone(spec),
          createdAt: new Date().toISOString(),
        },
        this.options.bus,
        this.#log.child({ vm_id: id }),
      );
      this.#vms.set(id, inst);
      try {
        await inst.saveSpec();
        await inst.saveBook();
        await this.#provision(inst);
        inst.book.provisioned = true;
        await inst.setStatus("created", "", "created");
        this.#log.info("VM created", { vm_id: id, vmm_pid: inst.process?.pid });
        return this.#state(inst);
      } catch (err) {
        this.#log.warn("VM creation failed; rolling back", { vm_id: id, err });
        await this.#destroy(inst).catch((e) =>
          this.#log.error("rollback failed", { vm_id: id, err: e })
        );
        this.#vms.delete(id);
        throw err;
      }
    });
  }

  /** Boots the VM; recreates its VMM from the stored spec when there is none. Running: no-op. */
  start(id: string): Promise<void> {
    return this.#op(id, async (inst, signal) => {
      if (inst.vmmAlive) {
        const info = await this.#info(inst);
        if (info.state === "Running") return;
        if (info.state === "Paused") {
          throw new FailedPreconditionError(`VM ${id} is paused; resume it instead`);
        }
      } else {
        await this.#provision(inst);
        await inst.setStatus(statusWithoutVmm(true, inst.book.booted));
      }
      try {
        await this.#ch(inst, () => inst.ops!.boot({ signal }));
      } finally {
        await inst.pump();
      }
      await inst.setStatus("running");
      this.#log.info("VM started", { vm_id: id });
    });
  }

  /**
   * Presses the ACPI power button and waits up to `timeoutMs` (0: the node default) for the
   * guest to power off, then shuts the VM down hard. A paused guest cannot react, so it is shut
   * down at once. Stopping a stopped VM succeeds. The VMM keeps the VM defined.
   */
  stop(id: string, timeoutMs = 0): Promise<void> {
    const grace = timeoutMs > 0 ? timeoutMs : this.options.stopTimeoutMs;
    return this.#op(id, async (inst, signal) => {
      if (!inst.vmmAlive) return await this.#markStopped(inst);
      const info = await this.#info(inst);
      if (info.state === "Created" || info.state === "Shutdown") {
        await inst.pump();
        return await inst.setStatus(statusFromChState(info.state, inst.book.booted));
      }
      if (info.state === "Running") {
        await this.#ch(inst, () => inst.ops!.powerButton());
        if (await this.#waitStopped(inst, grace, signal)) {
          this.#log.info("VM stopped by its guest", { vm_id: id });
          return;
        }
        this.#log.info("guest did not power off in time; shutting down", {
          vm_id: id,
          timeout_ms: grace,
        });
      }
      await this.#hardShutdown(inst);
    });
  }

  /** Shuts the VM down at once; kills the VMM if it does not answer in time. */
  forceStop(id: string): Promise<void> {
    this.#vms.get(checkVmId(id))?.current?.abort();
    return this.#op(id, async (inst) => {
      if (!inst.vmmAlive) return await this.#markStopped(inst);
      const proc = inst.process!;
      const timeoutMs = this.options.forceStopTimeoutMs;
      try {
        const info = await inst.ops!.info({ timeoutMs });
        if (info.state === "Running" || info.state === "Paused") {
          await inst.ops!.shutdown({ timeoutMs }).catch((err) => {
            // "Not running": the guest got there first.
            if (!(err instanceof FailedPreconditionError)) throw err;
          });
        }
        await inst.pump();
        await inst.setStatus(statusWithoutVmm(true, inst.book.booted));
      } catch (err) {
        this.#log.warn("VMM did not answer a shutdown; killing it", { vm_id: id, err });
        proc.expectedExit = true;
        const exit = await proc.killAndWait();
        await this.#onExit(inst, proc, exit);
      }
    });
  }

  /** Pauses a running VM; pausing a paused VM succeeds. */
  pause(id: string): Promise<void> {
    return this.#op(id, async (inst) => {
      const info = await this.#info(inst);
      if (info.state === "Paused") return;
      if (info.state !== "Running") throw new FailedPreconditionError(`VM ${id} is not running`);
      await this.#ch(inst, () => inst.ops!.pause());
      await inst.pump();
      await inst.setStatus("paused");
    });
  }

  /** Resumes a paused VM; resuming a running VM succeeds. */
  resume(id: string): Promise<void> {
    return this.#op(id, async (inst) => {
      const info = await this.#info(inst);
      if (info.state === "Running") return;
      if (info.state !== "Paused") throw new FailedPreconditionError(`VM ${id} is not paused`);
      await this.#ch(inst, () => inst.ops!.resume());
      await inst.pump();
      await inst.setStatus("running");
    });
  }

  /** Reboots a running or paused VM (it ends running). */
  reboot(id: string): Promise<void> {
    return this.#op(id, async (inst, signal) => {
      const info = await this.#info(inst);
      if (info.state !== "Running" && info.state !== "Paused") {
        throw new FailedPreconditionError(`VM ${id} is not running`);
      }
      try {
        await this.#ch(inst, () => inst.ops!.reboot({ signal }));
      } finally {
        await inst.pump();
      }
      await inst.setStatus("running");
    });
  }

  /**
   * Deletes the VM: ends its VMM (asking first, then SIGKILL; never leaves it running),
   * removes its taps and runtime directory. Deleting an unknown VM succeeds (and still
   * removes any taps left by an interrupted delete).
   */
  delete(id: string): Promise<void> {
    checkVmId(id);
    this.#vms.get(id)?.current?.abort();
    return this.#run(id, async () => {
      const inst = this.#vms.get(id);
      if (inst) {
        await this.#destroy(inst);
        this.#vms.delete(id);
        inst.publish({
          kind: "state_changed",
          source: "node",
          event: "deleted",
          properties: {},
          message: "VM deleted",
          status: "unknown",
        });
        this.#log.info("VM deleted", { vm_id: id });
      } else {
        await this.options.networks.removeVmTaps(id);
        await removeVmDir(vmPaths(this.options.runtimeDir, id));
      }
    });
  }

  // ---- devices and sizes -------------------------------------------------------------------

  /** Adds a disk (hot-plugged when the VM runs); the same disk again is a no-op. */
  addDisk(id: string, config: node.DiskConfig.$Properties): Promise<void> {
    if (!config.id) throw InvalidArgumentError.field("config.id", "required");
    return this.#op(id, async (inst) => {
      const disks = inst.spec.disks ?? [];
      const disk = normalizeDisk(config, disks.length, "config");
      if (disk.id === SEED_DISK_ID && inst.spec.cloudInit) {
        throw InvalidArgumentError.field("config.id", `${SEED_DISK_ID} is the cloud-init seed`);
      }
      const same = disks.find((d) => d.id === disk.id);
      if (same) {
        if (JSON.stringify(same) === JSON.stringify(disk)) return;
        throw new AlreadyExistsError(`VM ${id} already has a different disk ${disk.id}`);
      }
      if (disk.path && disks.some((d) => d.path === disk.path)) {
        throw new AlreadyExistsError(`VM ${id} already uses ${disk.path}`);
      }
      const binding = await bindDisk(this.options.pools, disk, "config");
      if (inst.vmmAlive) await this.#ch(inst, () => inst.ops!.addDisk(chDisk(disk, binding)));
      inst.files.spec = { ...inst.spec, disks: [...disks, disk] };
      await inst.saveSpec();
      await inst.pump();
    });
  }

  /** Removes a disk; removing one the VM does not have succeeds. */
  removeDisk(id: string, deviceIdText: string): Promise<void> {
    const dev = deviceId(deviceIdText, "device_id");
    if (dev === SEED_DISK_ID) {
      throw InvalidArgumentError.field("device_id", "the cloud-init seed is managed by the node");
    }
    return this.#op(id, async (inst) => {
      const disks = inst.spec.disks ?? [];
      if (!disks.some((d) => d.id === dev)) return;
      if (inst.vmmAlive) await this.#removeDevice(inst, dev);
      inst.files.spec = { ...inst.spec, disks: disks.filter((d) => d.id !== dev) };
      await inst.saveSpec();
    });
  }

  /**
   * Adds a NIC: a bridge NIC gets its own tap on the bridge (enslaved, with the MTU and
   * queues) before CH opens it; a macvtap NIC gets its macvtap on the parent and reaches CH as
   * descriptors. The device is removed with the NIC or the VM.
   */
  addNic(id: string, config: node.NetConfig.$Properties): Promise<void> {
    if (!config.id) throw InvalidArgumentError.field("config.id", "required");
    return this.#op(id, async (inst) => {
      const nics = inst.spec.networks ?? [];
      const same = nics.find((n) => n.id === config.id);
      const index = same?.tap ? tapIndex(same.tap) ?? 0 : this.#nextNicIndex(nics);
      const nic = normalizeNic(id, config, index, "config");
      if (same) {
        if (JSON.stringify(same) === JSON.stringify(nic)) return;
        throw new AlreadyExistsError(`VM ${id} already has a different NIC ${nic.id}`);
      }
      if (nics.some((n) => n.mac === nic.mac)) {
        throw new AlreadyExistsError(`VM ${id} already has a NIC with MAC ${nic.mac}`);
      }
      await bindNic(this.options.networks, id, nic);
      try {
        if (inst.vmmAlive) await this.#addNet(inst, nic);
      } catch (err) {
        if (hasManagedDevice(nic)) {
          await this.options.networks.removeNicTap(id, index).catch(() => {});
        }
        throw err;
      }
      inst.files.spec = { ...inst.spec, networks: [...nics, nic] };
      await inst.saveSpec();
      await inst.pump();
    });
  }

  /** Removes a NIC and its tap (or macvtap); removing one the VM does not have succeeds. */
  removeNic(id: string, deviceIdText: string): Promise<void> {
    const dev = deviceId(deviceIdText, "device_id");
    return this.#op(id, async (inst) => {
      const nics = inst.spec.networks ?? [];
      const nic = nics.find((n) => n.id === dev);
      if (!nic) return;
      if (inst.vmmAlive) await this.#removeDevice(inst, dev);
      const index = hasManagedDevice(nic) ? tapIndex(nic.tap!) : undefined;
      if (index !== undefined) await this.options.networks.removeNicTap(id, index);
      inst.files.spec = { ...inst.spec, networks: nics.filter((n) => n.id !== dev) };
      await inst.saveSpec();
    });
  }

  /** Changes vCPUs and/or RAM (hotplug when running; the stored spec follows). */
  resize(id: string, desired: { vcpus?: number; ramBytes?: number }): Promise<void> {
    const { vcpus, ramBytes } = desired;
    if (vcpus === undefined && ramBytes === undefined) {
      throw InvalidArgumentError.field("desired_vcpus", "give desired_vcpus or desired_ram");
    }
    if (
      ramBytes !== undefined &&
      (!Number.isInteger(ramBytes) || ramBytes < 1 << 20 || ramBytes % 4096)
    ) {
      throw InvalidArgumentError.field("desired_ram", "must be at least 1 MiB and 4 KiB aligned");
    }
    return this.#op(id, async (inst) => {
      const cpus = inst.spec.cpus!;
      if (
        vcpus !== undefined && (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > cpus.maxVcpus!)
      ) {
        throw InvalidArgumentError.field(
          "desired_vcpus",
          `must be from 1 to max_vcpus (${cpus.maxVcpus})`,
        );
      }
      if (inst.vmmAlive) {
        await this.#ch(
          inst,
          () => inst.ops!.resize({ desired_vcpus: vcpus, desired_ram: ramBytes }),
        );
      }
      inst.files.spec = {
        ...inst.spec,
        cpus: { ...cpus, bootVcpus: vcpus ?? cpus.bootVcpus },
        memory: { ...inst.spec.memory, size: ramBytes ?? inst.spec.memory!.size },
      };
      await inst.saveSpec();
      await inst.pump();
    });
  }

  /**
   * Grows a disk to `newSize` bytes: through CH (`vm.resize-disk`) while the VM runs, otherwise
   * the file itself (confined to a pool). Without a VM id, `path` names the file.
   */
  async resizeDisk(req: { vmId: string; diskId: string; path: string; newSize: number }) {
    if (!req.vmId) {
      if (!req.path) throw InvalidArgumentError.field("path", "give vm_id and disk_id, or path");
      const real = await this.options.pools.resolve(req.path, "path");
      return await this.options.pools.withPaths([real], () => resizeDisk(real, req.newSize));
    }
    return await this.#op(req.vmId, async (inst) => {
      const disk = (inst.spec.disks ?? []).find((d) =>
        req.diskId ? d.id === req.diskId : d.path === req.path
      );
      if (!disk?.path) {
        throw InvalidArgumentError.field(
          req.diskId ? "disk_id" : "path",
          `VM ${inst.id} has no such file disk`,
        );
      }
      if (inst.vmmAlive && (inst.status === "running" || inst.status === "paused")) {
        await this.#ch(
          inst,
          () => inst.ops!.resizeDisk({ id: disk.id!, desired_size: req.newSize }),
        );
        return;
      }
      const real = await this.options.pools.resolve(disk.path, "path");
      await this.options.pools.withPaths([real], () => resizeDisk(real, req.newSize));
    });
  }

  /**
   * Snapshots a running or paused VM into `file://<dir>` (inside a pool): a running VM is
   * paused for the snapshot and resumed afterwards, whatever the outcome.
   */
  async snapshot(id: string, url: string): Promise<void> {
    const dir = fileUrlDir(url, "snapshot_url");
    const real = await this.options.pools.resolve(dir, "snapshot_url");
    return await this.#op(id, async (inst) => {
      const info = await this.#info(inst);
      if (info.state !== "Running" && info.state !== "Paused") {
        throw new FailedPreconditionError(`VM ${id} is not running`);
      }
      await Deno.mkdir(real, { recursive: true, mode: 0o750 });
      const wasRunning = info.state === "Running";
      if (wasRunning) await this.#ch(inst, () => inst.ops!.pause());
      try {
        await this.#ch(inst, () => inst.ops!.snapshot(`file://${real}`));
      } finally {
        if (wasRunning) await this.#ch(inst, () => inst.ops!.resume());
        await inst.pump();
      }
      this.#log.info("VM snapshotted", { vm_id: id, dir: real });
    });
  }

  /**
   * Restores a stopped VM from a snapshot directory into a fresh VMM and resumes it. The VM
   * must exist on this node (its taps and files are rebuilt from its spec).
   */
  async restore(id: string, url: string): Promise<void> {
    const dir = fileUrlDir(url, "source_url");
    const real = await this.options.pools.resolve(dir, "source_url");
    const config = await Deno.stat(`${real}/config.json`).catch(() => null);
    if (!config?.isFile) {
      throw new FailedPreconditionError(`source_url: ${dir} holds no snapshot (no config.json)`);
    }
    return await this.#op(id, async (inst, signal) => {
      if (inst.vmmAlive) {
        const info = await this.#info(inst);
        if (info.state === "Running" || info.state === "Paused") {
          throw new FailedPreconditionError(`VM ${id} is running; stop it before restoring`);
        }
        const proc = inst.process!;
        proc.expectedExit = true;
        await this.#onExit(inst, proc, await proc.killAndWait());
      }
      for (const nic of inst.spec.networks ?? []) await bindNic(this.options.networks, id, nic);
      const queues = await this.#restoredQueues(inst, real);
      try {
        await this.#startVmm(inst);
        try {
          await this.#ch(
            inst,
            () =>
              inst.ops!.restore(
                {
                  source_url: `file://${real}`,
                  prefault: false,
                  net_fds: queues.netFds.length ? queues.netFds : undefined,
                },
                { signal, fds: queues.fds },
              ),
          );
          await this.#ch(inst, () => inst.ops!.resume());
        } finally {
          await inst.pump();
        }
      } finally {
        for (const fd of queues.fds) closeFd(fd);
      }
      await inst.setStatus("running");
      this.#log.info("VM restored", { vm_id: id, dir: real });
    });
  }

  // ---- restart recovery --------------------------------------------------------------------

  /**
   * Re-adopts every VM of the runtime dir (after an agent restart): live VMMs are adopted and
   * their missed events published; a VM whose VMM died is crashed (with the reason) unless the
   * node had ended it; creations interrupted by a crash are rolled back; taps of VMs that no
   * longer exist are removed. Then starts watching event files.
   */
  async recover(): Promise<RecoveryReport> {
    const report: RecoveryReport = {
      adopted: [],
      crashed: [],
      stopped: [],
      rolledBack: [],
      orphanTaps: [],
    };
    await Deno.mkdir(this.options.runtimeDir, { recursive: true });
    for (const id of await listVmDirs(this.options.runtimeDir)) {
      try {
        const outcome = await this.#recoverOne(id);
        report[outcome].push(id);
      } catch (err) {
        this.#log.error("could not recover VM", { vm_id: id, err });
      }
    }
    try {
      for (const tap of await this.options.networks.listTaps()) {
        if (!tap.vmId || tap.inUse) continue;
        const owner = this.#vms.get(tap.vmId);
        if (!owner) {
          await this.options.networks.removeVmTaps(tap.vmId);
          report.orphanTaps.push(tap.name);
        } else if (
          !(owner.spec.networks ?? []).some((n) => hasManagedDevice(n) && n.tap === tap.name) &&
          tap.index !== undefined
        ) {
          // A NIC whose hot-add or removal was cut short by a crash.
          await this.options.networks.removeNicTap(tap.vmId, tap.index);
          report.orphanTaps.push(tap.name);
        }
      }
    } catch (err) {
      this.#log.warn("could not reconcile taps", { err });
    }
    this.watch();
    return report;
  }

  async #recoverOne(id: string): Promise<keyof RecoveryReport> {
    const paths = vmPaths(this.options.runtimeDir, id);
    const book = await readBook(paths.state).catch(() => undefined);
    let files;
    try {
      files = await readSpecFile(paths.spec);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || !book?.provisioned) {
        await this.#rollBackDir(id, paths, book?.vmmPid);
        return "rolledBack";
      }
      const log = this.#log.child({ vm_id: id });
      const inst = new VmInstance(
        id,
        paths,
        {
          requested: { vmId: id },
          spec: { vmId: id },
          createdAt: "",
        },
        this.options.bus,
        log,
      );
      inst.broken = `cannot read spec.json: ${(err as Error).message}`;
      inst.book = { ...inst.book, ...book, status: "crashed", reason: inst.broken };
      this.#vms.set(id, inst);
      return "crashed";
    }
    if (!book?.provisioned) {
      await this.#rollBackDir(id, paths, book?.vmmPid);
      return "rolledBack";
    }
    const offset = Number((await Deno.readTextFile(paths.eventsOffset).catch(() => "0")).trim());
    const inst = new VmInstance(
      id,
      paths,
      files,
      this.options.bus,
      this.#log.child({ vm_id: id }),
      Number.isFinite(offset) ? offset : 0,
    );
    inst.book = book;
    this.#vms.set(id, inst);
    const pid = book.vmmPid || Number((await Deno.readTextFile(paths.pid).catch(() => "0")).trim());
    const proc = pid ? VmmProcess.adopt(pid, paths.apiSocket, this.options.pollMs ?? 500) : null;
    if (proc) {
      inst.attach(proc);
      this.#watchExit(inst, proc);
      await inst.pump();
      try {
        const info = await inst.ops!.info({ timeoutMs: 3_000 });
        inst.memoryActualSize = info.memory_actual_size;
        const booted = inst.book.booted || info.state === "Running" || info.state === "Paused";
        await inst.setStatus(statusFromChState(info.state, booted));
      } catch (err) {
        await inst.setStatus(
          "unknown",
          `VMM pid ${pid} does not answer: ${(err as Error).message}`,
        );
      }
      await this.#reconcileTaps(inst);
      this.#log.info("VM re-adopted", { vm_id: id, vmm_pid: pid, status: inst.status });
      return "adopted";
    }
    await inst.pump();
    if (!pid || book.vmmStopped) {
      await inst.setStatus(statusWithoutVmm(true, inst.book.booted));
      return "stopped";
    }
    if (inst.status !== "crashed") {
      const exit: VmmExit = { code: null, signal: null, adopted: true };
      const reason = await this.#crashReason(
        inst,
        `the VMM (pid ${pid}) exited while the agent was not running`,
      );
      inst.book.vmmPid = 0;
      inst.publish({
        kind: "process_exit",
        source: "node",
        event: "vmm-exit",
        properties: { pid: String(pid) },
        message: `${describeExit(exit)}; ${reason}`,
        status: "crashed",
      });
      await inst.setStatus("crashed", reason);
    }
    return "crashed";
  }

  /** Undoes a creation that never finished (an agent crash during CreateVM). */
  async #rollBackDir(id: string, paths: VmPaths, pid?: number): Promise<void> {
    const proc = pid ? VmmProcess.adopt(pid, paths.apiSocket, 50) : null;
    if (proc) await proc.killAndWait();
    await this.options.networks.removeVmTaps(id).catch(() => {});
    await removeVmDir(paths);
    this.#log.warn("rolled back an interrupted VM creation", { vm_id: id });
  }

  /** Re-creates or fixes the taps of a live VM's bridge NICs (e.g. after a bridge was rebuilt). */
  async #reconcileTaps(inst: VmInstance): Promise<void> {
    for (const nic of inst.spec.networks ?? []) {
      try {
        await bindNic(this.options.networks, inst.id, nic);
      } catch (err) {
        this.#log.warn("could not reconcile a tap", { vm_id: inst.id, nic: nic.id, err });
      }
    }
  }

  /** Starts watching VM event files (inotify, plus a slow poll as a safety net). */
  watch(): void {
    if (this.#watcher || this.#closed) return;
    try {
      this.#watcher = Deno.watchFs(this.options.runtimeDir, { recursive: true });
      (async () => {
        for await (const ev of this.#watcher!) {
          for (const p of ev.paths) {
            if (basename(p) !== "events") continue;
            this.#vms.get(basename(dirname(p)))?.schedulePump();
          }
        }
      })().catch((err) => this.#log.warn("event file watcher stopped", { err }));
    } catch (err) {
      this.#log.warn("cannot watch the runtime dir; polling only", { err });
    }
    this.#poll = setInterval(() => {
      for (const inst of this.#vms.values()) if (inst.vmmAlive) inst.schedulePump();
    }, this.options.pollMs ?? 2_000);
  }

  /** Stops watching (agent shutdown). VMMs keep running and are re-adopted next time. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = null;
    clearInterval(this.#poll);
    for (const inst of this.#vms.values()) {
      await inst.pump().catch(() => {});
      inst.process?.release();
      inst.closeClients();
    }
  }

  /** Where the VM's serial port goes on this host (mode and file or socket path). */
  serial(id: string): SerialConfig {
    const inst = this.#require(id);
    return serialTarget(inst.spec, inst.paths);
  }

  // ---- internals ---------------------------------------------------------------------------

  #require(id: string): VmInstance {
    const inst = this.#vms.get(id);
    if (!inst) throw NotFoundError.of("VM", id);
    return inst;
  }

  #state(inst: VmInstance): VmState {
    return {
      config: inst.spec,
      status: inst.status,
      memoryActualSize: inst.vmmAlive ? inst.memoryActualSize : undefined,
      reason: inst.book.reason,
      vmmPid: inst.vmmAlive ? inst.process!.pid : 0,
    };
  }

  #run<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.#queue.run(id, work);
  }

  /** Runs a queued operation on an existing, manageable VM, interruptible via `current`. */
  #op<T>(id: string, work: (inst: VmInstance, signal: AbortSignal) => Promise<T>): Promise<T> {
    checkVmId(id);
    return this.#run(id, async () => {
      const inst = this.#require(id);
      if (inst.broken) throw new FailedPreconditionError(`VM ${id} is broken: ${inst.broken}`);
      const ac = new AbortController();
      inst.current = ac;
      try {
        return await work(inst, ac.signal);
      } finally {
        if (inst.current === ac) inst.current = null;
      }
    });
  }

  /** `vm.info` of the VM's VMM (which must run); remembers the memory size it reports. */
  async #info(inst: VmInstance): Promise<VmInfo> {
    const info = await this.#ch(inst, () => inst.requireVmm().info());
    inst.memoryActualSize = info.memory_actual_size;
    return info;
  }

  /** A VMM call whose "no such VM" (CH 404) means a wrong state here, not an unknown VM. */
  async #ch<T>(inst: VmInstance, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof NotFoundError && vmmApiErrorOf(err)) {
        throw new FailedPreconditionError(`VM ${inst.id}: ${err.message}`, { cause: err });
      }
      if (err instanceof UnavailableError && !inst.vmmAlive) {
        throw new FailedPreconditionError(`VM ${inst.id}: its VMM is gone`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Removes a device from the VMM. From a booted VM the unplug completes when the guest
   * acknowledges it (`vm/device-removed`), which is awaited for a few seconds so the device's
   * host side (a tap) is not pulled from under the VMM.
   */
  async #removeDevice(inst: VmInstance, dev: string): Promise<void> {
    const ac = new AbortController();
    const booted = inst.status === "running" || inst.status === "paused";
    const removed = booted
      ? (async () => {
        for await (const e of this.options.bus.subscribe({ vmId: inst.id, signal: ac.signal })) {
          if (e.kind === "vmm" && e.event === "device-removed" && e.properties.id === dev) return;
        }
      })()
      : Promise.resolve();
    try {
      try {
        await inst.ops!.removeDevice(dev);
      } catch (err) {
        // CH does not know it (never added to this VMM): nothing to remove there.
        if (!(err instanceof NotFoundError && vmmApiErrorOf(err))) throw err;
        return;
      }
      await inst.pump();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([removed, new Promise((r) => timer = setTimeout(r, 5_000))]);
      clearTimeout(timer);
    } finally {
      ac.abort();
      await removed.catch(() => {});
    }
  }

  #nextNicIndex(nics: NicSpec[]): number {
    const used = nics.map((n, i) => (n.tap ? tapIndex(n.tap) : undefined) ?? i);
    const next = Math.max(nics.length - 1, ...used) + 1;
    if (next > MAX_NIC_INDEX) throw new FailedPreconditionError("no NIC index left");
    return next;
  }

  /** Builds the host side (pools, taps, seed), starts a VMM and `vm.create`s the VM. */
  async #provision(inst: VmInstance): Promise<void> {
    const bindings = await bindHostResources(
      { pools: this.options.pools, networks: this.options.networks },
      inst.spec,
      inst.paths,
    );
    inst.files.ch = buildChConfig(inst.spec, bindings);
    await inst.saveSpec();
    await this.#startVmm(inst);
    await this.#ch(inst, () => inst.ops!.create(inst.files.ch!));
    // `vm.create` cannot carry descriptors: macvtap NICs are added to the config right after.
    for (const nic of inst.spec.networks ?? []) {
      if (isMacvtapNic(nic)) await this.#addNet(inst, nic);
    }
    await inst.pump();
  }

  /**
   * `vm.add-net` for one NIC: by tap name, or, for a macvtap NIC, with its queues opened by
   * the node and passed as descriptors (see `node/vmm/fd_passing.ts` for why this way).
   */
  async #addNet(inst: VmInstance, nic: NicSpec): Promise<void> {
    if (!isMacvtapNic(nic)) {
      await this.#ch(inst, () => inst.ops!.addNet(chNet(nic)));
      return;
    }
    const fds = await this.options.networks.openNicQueues(
      nic.tap!,
      (nic.numQueues ?? 2) / 2,
      inst.paths.dir,
    );
    try {
      await this.#ch(inst, () => inst.ops!.addNet(chNet(nic), { fds }));
    } finally {
      for (const fd of fds) closeFd(fd);
    }
  }

  /**
   * The tap queues a snapshot's descriptor-backed NICs need on restore: CH wrote them into the
   * snapshot as `fds: [-1, …]`; each must be a macvtap NIC of the VM, whose queues are opened.
   */
  async #restoredQueues(
    inst: VmInstance,
    snapshotDir: string,
  ): Promise<{ netFds: RestoredNetConfig[]; fds: number[] }> {
    let nets: { id?: string; fds?: number[] | null }[];
    try {
      const config = JSON.parse(await Deno.readTextFile(`${snapshotDir}/config.json`));
      nets = Array.isArray(config?.net) ? config.net : [];
    } catch (err) {
      throw new FailedPreconditionError(
        `source_url: the snapshot's config.json cannot be read: ${(err as Error).message}`,
      );
    }
    const netFds: RestoredNetConfig[] = [];
    const fds: number[] = [];
    try {
      for (const n of nets) {
        if (!n.fds?.length) continue;
        const nic = (inst.spec.networks ?? []).find((x) => x.id === n.id && isMacvtapNic(x));
        if (!nic) {
          throw new FailedPreconditionError(
            `the snapshot's NIC ${n.id} takes tap descriptors, but VM ${inst.id} has no macvtap NIC ${n.id}`,
          );
        }
        const opened = await this.options.networks.openNicQueues(
          nic.tap!,
          n.fds.length,
          inst.paths.dir,
        );
        fds.push(...opened);
        netFds.push({ id: nic.id!, num_fds: opened.length });
      }
    } catch (err) {
      for (const fd of fds) closeFd(fd);
      throw err;
    }
    return { netFds, fds };
  }

  /** Starts a fresh VMM for the VM (its previous one must be gone) and waits for its API. */
  async #startVmm(inst: VmInstance): Promise<void> {
    await inst.resetEvents();
    const proc = VmmProcess.spawn({
      binary: this.options.vmmBinary,
      paths: inst.paths,
      env: this.options.vmmEnv,
    });
    inst.book.vmmPid = proc.pid;
    inst.book.vmmStartedAt = Date.now();
    inst.book.vmmStopped = false;
    await Deno.writeTextFile(inst.paths.pid, `${proc.pid}\n`);
    await inst.saveBook();
    inst.attach(proc);
    this.#watchExit(inst, proc);
    const died = proc.exited.then(async (exit) => {
      throw new UnavailableError(
        `the VMM did not start: ${await this.#crashReason(inst, describeExit(exit))}`,
      );
    });
    try {
      await Promise.race([
        waitForVmm(inst.paths.apiSocket, { timeoutMs: this.options.vmmStartTimeoutMs ?? 15_000 }),
        died,
      ]);
    } catch (err) {
      proc.expectedExit = true;
      await proc.killAndWait().catch(() => {});
      throw err;
    } finally {
      died.catch(() => {});
    }
    await inst.pump();
  }

  #watchExit(inst: VmInstance, proc: VmmProcess): void {
    proc.exited.then((exit) => this.#onExit(inst, proc, exit)).catch((err) =>
      this.#log.error("VMM exit handling failed", { vm_id: inst.id, err })
    );
  }

  /** A VMM is gone: publish its exit and the VM's new status (crashed unless expected). */
  async #onExit(inst: VmInstance, proc: VmmProcess, exit: VmmExit): Promise<void> {
    if (inst.process !== proc) return;
    await inst.pump().catch(() => {});
    if (inst.process !== proc) return;
    inst.detach();
    if (inst.deleting) return;
    const expected = proc.expectedExit;
    const status = statusWithoutVmm(expected, inst.book.booted);
    const reason = expected ? "" : await this.#crashReason(inst, describeExit(exit));
    inst.book.vmmPid = 0;
    inst.book.vmmStopped = expected;
    inst.publish({
      kind: "process_exit",
      source: "node",
      event: "vmm-exit",
      properties: compactProps({
        pid: String(proc.pid),
        code: exit.code === null ? undefined : String(exit.code),
        signal: exit.signal ?? undefined,
      }),
      message: expected ? `${describeExit(exit)} (ended by the node)` : reason,
      status,
    });
    await inst.setStatus(status, reason);
    if (!expected) this.#log.warn("VMM died", { vm_id: inst.id, pid: proc.pid, reason });
  }

  /** `what`, plus the last lines the VMM logged, for a crash report. */
  async #crashReason(inst: VmInstance, what: string): Promise<string> {
    // Routine INFO lines say nothing about a death; warnings and errors might.
    const log = (await tailLines(inst.paths.chLog, 200)).filter((l) =>
      /\b(WARN|ERROR)\b|panic/.test(l)
    )
      .slice(-3);
    const err = await tailLines(inst.paths.stderr, 3);
    const parts = [what];
    if (log.length) parts.push(`last warnings: ${log.join(" | ")}`);
    if (err.length) parts.push(`stderr: ${err.join(" | ")}`);
    return parts.join("; ");
  }

  /** Waits up to `ms` for the guest to power off; true when it did. */
  async #waitStopped(inst: VmInstance, ms: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      await inst.pump();
      if (isStopped(inst.status) || !inst.vmmAlive) return true;
      try {
        const info = await inst.reads!.info({ timeoutMs: 1_000, signal });
        if (info.state === "Created" || info.state === "Shutdown") {
          await inst.pump();
          await inst.setStatus("shutdown");
          return true;
        }
      } catch (err) {
        if (signal.aborted) return false;
        this.#log.debug("vm.info failed while waiting for a stop", { vm_id: inst.id, err });
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return false;
      await inst.waitChange(Math.min(left, 200), signal);
    }
  }

  /** `vm.shutdown` (config kept); an already stopped VM is fine. */
  async #hardShutdown(inst: VmInstance): Promise<void> {
    try {
      await this.#ch(inst, () => inst.ops!.shutdown());
    } catch (err) {
      if (!(err instanceof FailedPreconditionError)) throw err;
    }
    await inst.pump();
    await inst.setStatus(statusWithoutVmm(true, inst.book.booted));
  }

  /** A VM without a VMM asked to stop: it is stopped now (a crash is acknowledged). */
  async #markStopped(inst: VmInstance): Promise<void> {
    inst.book.vmmStopped = true;
    await inst.setStatus(statusWithoutVmm(true, inst.book.booted));
  }

  /** Ends the VM's VMM for good and removes its taps and runtime directory. */
  async #destroy(inst: VmInstance): Promise<void> {
    inst.deleting = true;
    const proc = inst.process;
    if (proc?.alive) {
      proc.expectedExit = true;
      const timeoutMs = this.options.forceStopTimeoutMs;
      try {
        await inst.ops?.shutdownVmm({ timeoutMs });
      } catch (err) {
        this.#log.debug("vmm.shutdown failed; killing the VMM", { vm_id: inst.id, err });
      }
      if (!(await proc.waitExit(timeoutMs))) await proc.killAndWait();
    }
    inst.detach();
    await inst.settle();
    // Taps exist only for bridge and macvtap NICs (one a crash left behind is swept by
    // `recover`).
    if ((inst.spec.networks ?? []).some(hasManagedDevice)) {
      await this.options.networks.removeVmTaps(inst.id);
    }
    await removeVmDir(inst.paths);
  }
}

function compactProps(o: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
