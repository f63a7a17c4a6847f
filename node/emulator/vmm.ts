/**
 * The emulated VMM: CH's two-level state (a stored config, and a VM object that is Running or
 * Paused), every API action with CH's real status codes, error chains and events, the
 * guest-initiated poweroff/reboot/panic, and the host resources a real VM holds (disk locks,
 * taps, console sockets). Every action and guest event runs through one FIFO queue, as CH's
 * single control-loop thread does: a slow call blocks all others, `vmm.ping` included.
 */
import type {
  ConsoleConfig,
  DiskConfig,
  NetConfig,
  PciDeviceInfo,
  RestoreConfig,
  VmConfig,
  VmCounters,
  VmInfo,
  VmmPingResponse,
  VmResize,
  VmResizeDisk,
  VmResizeZone,
} from "../vmm/types.ts";
import { type Action, ApiFailure, CAUSE, ioErrorText, vmError } from "./api_error.ts";
import {
  bootLog,
  ConsoleError,
  createHostConsole,
  type HostConsole,
  LOGIN_PROMPT,
} from "./console.ts";
import {
  assignIds,
  bootDeviceOrder,
  configIds,
  DEVICE_LISTS,
  deviceCounters,
  type DeviceList,
  deviceTree,
  IdAllocator,
  PciBus,
} from "./devices.ts";
import type { EventMonitor } from "./event_monitor.ts";
import type { Faults } from "./faults.ts";
import { type HeldLock, tryLock } from "./locks.ts";
import type { ChLog } from "./log.ts";
import * as schema from "./schema.ts";
import { normalize } from "./serde.ts";
import { readSnapshot, snapshotDir, SnapshotError, writeSnapshot } from "./snapshot.ts";
import { inspectTapFds, openTap, TapError, type TapHandle } from "./tap.ts";
import { closeFd } from "../sys/libc.ts";
import { totalRam, validateVmConfig } from "./validate.ts";

/** What `vmm.ping` reports. */
export interface VmmIdentity {
  buildVersion: string;
  version: string;
  features: string[];
}

export interface VmmOptions {
  events: EventMonitor;
  log: ChLog;
  faults: Faults;
  /** `--no-shutdown`: a guest poweroff leaves the VMM running with the config. */
  noShutdown: boolean;
  identity: VmmIdentity;
  /** Ends the process (after CH's cleanup). */
  exit: (code: number) => void;
}

/** Kinds of device `vm.add-*` can plug. */
export type AddKind =
  | "disk"
  | "net"
  | "fs"
  | "pmem"
  | "vsock"
  | "vdpa"
  | "device"
  | "user_device"
  | "generic_vhost_user";

const ADD: Record<AddKind, { action: Action; list: DeviceList | "vsock"; prefix: string }> = {
  disk: { action: "addDisk", list: "disks", prefix: "_disk" },
  net: { action: "addNet", list: "net", prefix: "_net" },
  fs: { action: "addFs", list: "fs", prefix: "_fs" },
  pmem: { action: "addPmem", list: "pmem", prefix: "_pmem" },
  vsock: { action: "addVsock", list: "vsock", prefix: "_vsock" },
  vdpa: { action: "addVdpa", list: "vdpa", prefix: "_vdpa" },
  device: { action: "addDevice", list: "devices", prefix: "_vfio" },
  user_device: { action: "addUserDevice", list: "user_devices", prefix: "_vfio_user" },
  generic_vhost_user: {
    action: "addGenericVhostUser",
    list: "generic_vhost_user",
    prefix: "_generic_vhost_user",
  },
};

/** A booted VM: its state and the host resources it holds. */
interface VmObject {
  state: "Running" | "Paused";
  bus: PciBus;
  ids: IdAllocator;
  locks: Map<string, HeldLock>;
  taps: Map<string, TapHandle>;
  /** Guest run time accumulated before `runningSince`. */
  runMs: number;
  runningSince: number | null;
  vcpuRemovalUntil: number;
  poweroffOnResume: boolean;
  pendingActivation: string[];
  timers: Set<ReturnType<typeof setTimeout>>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The emulated VMM of one process. */
export class Vmm {
  config: VmConfig | null = null;
  vm: VmObject | null = null;
  #consoles: HostConsole[] | null = null;
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * Tap queues received as descriptors, per `net` entry of the config. The config itself shows
   * `fds: [-1, …]` like CH's serialized config; the real descriptors live here until the entry
   * leaves the config (a reboot or shutdown keeps them, as CH does).
   */
  readonly #netFds = new WeakMap<object, number[]>();
  readonly #o: VmmOptions;

  constructor(options: VmmOptions) {
    this.#o = options;
  }

  /** Runs `fn` after every earlier queued action (the control loop). */
  exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  get #events(): EventMonitor {
    return this.#o.events;
  }

  // ---- API actions (call through `exclusive`) ----

  ping(): VmmPingResponse {
    const id = this.#o.identity;
    return {
      build_version: id.buildVersion,
      version: id.version,
      pid: Deno.pid,
      features: id.features,
    };
  }

  /** `vm.create`: stores the config (no validation) and creates the console devices. */
  create(config: VmConfig): void {
    if (this.config) throw vmError(500, "create", CAUSE.alreadyCreated);
    // Only SCM_RIGHTS fds are valid; numbers in the body are dropped.
    for (const n of config.net ?? []) delete (n as { fds?: unknown }).fds;
    this.config = config;
    try {
      this.#openConsoles();
    } catch (err) {
      if (err instanceof ConsoleError) {
        throw vmError(500, "create", "Error creating console devices", ...err.causes);
      }
      throw err;
    }
  }

  /** `vm.boot`: validates, takes the host resources, starts the guest. */
  async boot(): Promise<void> {
    if (this.vm) throw vmError(500, "boot", CAUSE.alreadyCreated);
    this.#events.emit("vm", "booting");
    if (!this.config) throw vmError(404, "boot", CAUSE.missingConfig);
    await this.#startVm("boot", false);
    this.#events.emit("vm", "booted");
    this.#guestBooted();
  }

  info(): VmInfo {
    if (!this.config) throw vmError(404, "info", CAUSE.notCreated);
    // Re-serialized through the schema so fields come out in CH's struct order.
    const c = normalize(this.config, schema.VmConfig) as VmConfig;
    const base = totalRam(c);
    if (!this.vm) return { config: c, state: "Created", memory_actual_size: base };
    const hotplugged = c.memory?.hotplugged_size ?? 0;
    const balloon = c.balloon?.size ?? 0;
    return {
      config: c,
      state: this.vm.state,
      memory_actual_size: base + hotplugged - balloon,
      device_tree: deviceTree(c, this.vm.bus),
    };
  }

  counters(): VmCounters {
    if (!this.vm || !this.config) throw vmError(500, "info", CAUSE.notRunning);
    return deviceCounters(this.config, this.#runMs(this.vm));
  }

  /** `vm.shutdown`: drops the VM object; the config stays (`vm.info` → Created). */
  shutdown(): void {
    if (!this.vm) throw vmError(500, "shutdown", CAUSE.notRunning);
    this.#stopVm();
    this.#events.emit("vm", "shutdown");
  }

  /** `vm.reboot`: tears the VM down and boots a new one from the same config. */
  async reboot(): Promise<void> {
    this.#events.emit("vm", "rebooting");
    if (!this.vm) throw vmError(404, "reboot", CAUSE.notCreated);
    this.#stopVm();
    await this.#startVm("reboot", false);
    this.#events.emit("vm", "rebooted");
    this.#guestBooted();
  }

  pause(): void {
    const vm = this.vm;
    if (!vm) throw vmError(500, "pause", CAUSE.notRunning);
    this.#events.emit("vm", "pausing");
    if (vm.state === "Paused") {
      throw vmError(
        500,
        "pause",
        "Cannot pause VM",
        "Failed to pause migratable component",
        "Invalid transition: InvalidStateTransition(Paused, Paused)",
      );
    }
    this.#setState(vm, "Paused");
    this.#events.emit("vm", "paused");
  }

  resume(): void {
    const vm = this.vm;
    if (!vm) throw vmError(500, "resume", CAUSE.notRunning);
    this.#events.emit("vm", "resuming");
    if (vm.state === "Running") {
      throw vmError(
        500,
        "resume",
        "Cannot resume VM",
        "Failed to resume migratable component",
        "Invalid transition: InvalidStateTransition(Running, Running)",
      );
    }
    this.#setState(vm, "Running");
    this.#events.emit("vm", "resumed");
    this.#scheduleActivation(vm);
    if (vm.poweroffOnResume) {
      vm.poweroffOnResume = false;
      this.#schedule(vm, this.#o.faults.poweroffDelayMs, () => this.guestPoweroff());
    }
  }

  /** ACPI power button: the emulated guest powers off shortly after (once running). */
  powerButton(): void {
    const vm = this.vm;
    if (!vm) throw vmError(500, "powerButton", CAUSE.notRunning);
    if (vm.state === "Paused") vm.poweroffOnResume = true;
    else this.#schedule(vm, this.#o.faults.poweroffDelayMs, () => this.guestPoweroff());
  }

  nmi(): void {
    if (!this.vm) throw vmError(500, "nmi", CAUSE.notRunning);
    this.#o.log.info("vmm", "Injecting NMI");
  }

  /** `vm.delete`: idempotent; shuts a booted VM down first. */
  delete(): void {
    if (!this.config) return;
    if (this.vm) {
      this.#stopVm();
      this.#events.emit("vm", "shutdown");
    } else {
      this.#closeConsoles();
    }
    this.#dropConfig();
    this.#events.emit("vm", "deleted");
  }

  /** `vmm.shutdown` (and SIGTERM): deletes the VM; the caller then exits the process. */
  vmmShutdown(): void {
    this.delete();
    this.#events.emit("vmm", "shutdown");
  }

  /**
   * `vm.add-*`: cold add (config edit, null) or hot-plug (PciDeviceInfo). For `net`, `fds` are
   * the tap queues that came with the request; the VMM takes them over (splices them out).
   */
  async add(
    kind: AddKind,
    device: Record<string, unknown>,
    fds: number[] = [],
  ): Promise<PciDeviceInfo | null> {
    const own = kind === "net" ? fds.splice(0) : [];
    try {
      return await this.#add(kind, device, own);
    } catch (err) {
      for (const fd of own) closeFd(fd);
      throw err;
    }
  }

  async #add(
    kind: AddKind,
    device: Record<string, unknown>,
    fds: number[],
  ): Promise<PciDeviceInfo | null> {
    const { action, list, prefix } = ADD[kind];
    if (kind === "net") this.#takeNetFds(device as NetConfig, fds, action);
    const config = this.config;
    if (!config) throw vmError(404, action, CAUSE.notCreated);
    if (kind === "vsock" && config.vsock) throw vmError(500, action, CAUSE.tooManyVsock);
    const clone = structuredClone(config);
    addToConfig(clone, list, structuredClone(device));
    const problem = validateVmConfig(clone);
    if (problem) throw vmError(problem.status, action, CAUSE.validate, ...problem.causes);
    const vm = this.vm;
    if (!vm) {
      addToConfig(config, list, device);
      return null;
    }
    const d = device as { id?: string };
    d.id ??= vm.ids.next(prefix, configIds(config));
    const id = d.id;
    if (kind === "disk") {
      const lock = this.#openDisk(action, device as DiskConfig);
      if (lock) vm.locks.set(id, lock);
    } else if (kind === "net") {
      try {
        vm.taps.set(id, await openTap(device as NetConfig, fds));
      } catch (err) {
        if (err instanceof TapError) throw vmError(500, action, CAUSE.deviceManager, ...err.causes);
        throw err;
      }
    } else if (kind === "device" || kind === "pmem") {
      const p = (device as { path?: string; file?: string }).path ??
        (device as { file?: string }).file;
      const what = kind === "pmem" ? "Cannot open pmem file" : "Failed to open VFIO device";
      if (p) requireFile(action, p, CAUSE.deviceManager, what);
    }
    const bdf = vm.bus.attach(id);
    addToConfig(config, list, device);
    vm.pendingActivation.push(id);
    if (vm.state === "Running") this.#scheduleActivation(vm);
    return { id, bdf };
  }

  /** `vm.remove-device`: hot-unplug (booted) or config edit (created). */
  removeDevice(id: string): void {
    const config = this.config;
    if (!config) throw vmError(404, "removeDevice", CAUSE.notCreated);
    const net = (config.net ?? []).find((n) => n.id === id);
    const vm = this.vm;
    if (!vm) {
      if (net) this.#releaseNetFds(net);
      if (!removeFromConfig(config, id)) {
        throw vmError(404, "removeDevice", `No device with id ${JSON.stringify(id)} to remove`);
      }
      return;
    }
    if (!configIds(config).has(id)) {
      throw vmError(
        404,
        "removeDevice",
        CAUSE.deviceManager,
        `Failed to find device corresponding to the given identifier: ${id}`,
      );
    }
    vm.locks.get(id)?.release();
    vm.locks.delete(id);
    vm.taps.get(id)?.close();
    vm.taps.delete(id);
    if (net) this.#releaseNetFds(net);
    const bdf = vm.bus.detach(id) ?? "";
    removeFromConfig(config, id);
    this.#events.emit("vm", "device-removed", { id, bdf });
  }

  /** `vm.resize`: config edit when not booted; hotplug rules when booted. */
  resize(r: VmResize): void {
    const c = this.config;
    if (!c) throw vmError(404, "resize", CAUSE.notCreated);
    const vm = this.vm;
    if (!vm) {
      if (r.desired_vcpus !== undefined) c.cpus!.boot_vcpus = r.desired_vcpus;
      if (r.desired_ram !== undefined) c.memory!.size = r.desired_ram;
      if (r.desired_balloon !== undefined && c.balloon) c.balloon.size = r.desired_balloon;
      return;
    }
    this.#events.emit("vm", "resizing");
    if (r.desired_vcpus !== undefined) {
      if (performance.now() < vm.vcpuRemovalUntil) throw new ApiFailure(429, ["Too Many Requests"]);
      const cpus = c.cpus!;
      if (r.desired_vcpus > cpus.max_vcpus || r.desired_vcpus < 1) {
        throw vmError(
          500,
          "resize",
          "Error from CPU manager",
          `Requested ${r.desired_vcpus} vCPUs, the VM allows 1 to ${cpus.max_vcpus}`,
        );
      }
      if (r.desired_vcpus < cpus.boot_vcpus) {
        // The guest has to offline the vCPUs first: the removal stays pending for a while.
        vm.vcpuRemovalUntil = performance.now() + this.#o.faults.vcpuUnplugMs;
      }
      cpus.boot_vcpus = r.desired_vcpus;
    }
    if (r.desired_ram !== undefined) this.#resizeRam(c, r.desired_ram);
    if (r.desired_balloon !== undefined) {
      if (!c.balloon) {
        throw vmError(500, "resize", "Memory manager error", "No balloon device to resize");
      }
      c.balloon.size = r.desired_balloon;
    }
    this.#events.emit("vm", "resized");
  }

  /** `vm.resize-disk`: online grow of a disk (a raw file really grows). */
  async resizeDisk(r: VmResizeDisk): Promise<void> {
    const c = this.config;
    if (!c) throw vmError(404, "resizeDisk", CAUSE.notCreated);
    if (!this.vm) throw vmError(500, "resizeDisk", CAUSE.resizeDisk);
    const disk = (c.disks ?? []).find((d) => d.id === r.id);
    if (!disk) {
      throw vmError(
        404,
        "resizeDisk",
        `Failed to find device corresponding to the given identifier: ${r.id}`,
      );
    }
    if (!disk.path || disk.image_type !== "Raw") return;
    try {
      const size = (await Deno.stat(disk.path)).size;
      if (r.desired_size < size) {
        throw vmError(
          500,
          "resizeDisk",
          CAUSE.resizeDisk,
          "Shrinking a disk image is not supported",
        );
      }
      if (r.desired_size > size) await Deno.truncate(disk.path, r.desired_size);
    } catch (err) {
      if (err instanceof ApiFailure) throw err;
      throw vmError(500, "resizeDisk", CAUSE.resizeDisk, ioErrorText(err));
    }
  }

  /** `vm.resize-zone`. */
  resizeZone(r: VmResizeZone): void {
    const c = this.config;
    if (!c) throw vmError(404, "resizeZone", CAUSE.notCreated);
    const zone = (c.memory?.zones ?? []).find((z) => z.id === r.id);
    if (!zone) throw vmError(500, "resizeZone", CAUSE.resizeZone);
    zone.size = r.desired_ram;
  }

  /** `vm.snapshot`: only when Paused; writes config.json, state.json, memory-ranges. */
  async snapshot(url: string): Promise<void> {
    const vm = this.vm;
    if (!vm || !this.config) throw vmError(500, "snapshot", CAUSE.notRunning);
    this.#events.emit("vm", "snapshotting");
    if (vm.state !== "Paused") {
      throw vmError(
        500,
        "snapshot",
        "Cannot snapshot VM",
        "Failed to snapshot migratable component",
        "Trying to snapshot while VM is running",
      );
    }
    if (this.#o.faults.snapshotDelayMs) await sleep(this.#o.faults.snapshotDelayMs);
    try {
      const dir = snapshotDir(url);
      await writeSnapshot(dir, this.config, { running_ms: this.#runMs(vm) });
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err;
      throw vmError(
        500,
        "snapshot",
        "Cannot send VM snapshot",
        "Failed to send migratable component snapshot",
        err.message,
      );
    }
    this.#events.emit("vm", "snapshotted");
  }

  /**
   * `vm.restore` into an empty VMM: Paused afterwards unless `resume`. `fds` are the tap queues
   * of the NICs `net_fds` announces, in that order; their count must match (else 400).
   */
  async restore(r: RestoreConfig, fds: number[] = []): Promise<void> {
    const own = fds.splice(0);
    try {
      await this.#restore(r, own);
    } catch (err) {
      for (const fd of own) closeFd(fd);
      throw err;
    }
  }

  async #restore(r: RestoreConfig, fds: number[]): Promise<void> {
    const announced = (r.net_fds ?? []).reduce((sum, n) => sum + n.num_fds, 0);
    if (announced !== fds.length) throw new ApiFailure(400, ["Bad Request"]);
    if (this.vm || this.config) throw vmError(500, "restore", CAUSE.alreadyCreated);
    const fail = (msg: string) =>
      vmError(
        500,
        "restore",
        "Cannot restore VM",
        "Failed to receive migratable component snapshot",
        msg,
      );
    let config: VmConfig;
    let runningMs: number;
    try {
      const snap = await readSnapshot(snapshotDir(r.source_url));
      config = normalize(JSON.parse(snap.configText), schema.VmConfig) as VmConfig;
      runningMs = snap.guest.running_ms;
    } catch (err) {
      if (err instanceof SnapshotError) throw fail(err.message);
      throw fail(`Error deserialising config: ${(err as Error).message}`);
    }
    for (const n of r.net_fds ?? []) {
      const net = (config.net ?? []).find((e) => e.id === n.id);
      if (!net) throw fail(`No network device with id ${JSON.stringify(n.id)} to restore`);
      this.#takeNetFds(net, fds.splice(0, n.num_fds), "restore");
    }
    this.#events.emit("vm", "restoring");
    if (this.#o.faults.restoreDelayMs) await sleep(this.#o.faults.restoreDelayMs);
    this.config = config;
    try {
      this.#openConsoles();
      await this.#startVm("restore", true);
    } catch (err) {
      // A half-restored VM is deleted.
      this.#stopVm();
      this.#closeConsoles();
      this.#dropConfig();
      if (err instanceof ConsoleError) {
        throw vmError(500, "restore", "Error creating console devices", ...err.causes);
      }
      throw err;
    }
    const vm = this.vm!;
    vm.runMs = runningMs;
    this.#setState(vm, "Paused");
    this.#events.emit("vm", "restored");
    if (r.resume) this.resume();
  }

  // ---- guest-initiated events (call through `exclusive`) ----

  /** The guest powered itself off: the process exits unless `--no-shutdown`. */
  guestPoweroff(): void {
    if (!this.vm || this.vm.state !== "Running") return;
    this.#o.log.info("vmm", "VM guest exit event");
    if (this.#o.noShutdown) {
      this.shutdown();
      return;
    }
    this.vmmShutdown();
    this.#o.exit(0);
  }

  /** The guest reset itself: the VMM rebuilds and reboots it. */
  async guestReboot(): Promise<void> {
    if (!this.vm) return;
    this.#o.log.info("vmm", "VM reset event");
    try {
      await this.reboot();
    } catch (err) {
      this.#o.log.error("vmm", `Guest reboot failed: ${(err as Error).message}`);
    }
  }

  /** The guest kernel panicked: a pvpanic device reports it; the guest then hangs. */
  guestPanic(): void {
    if (!this.vm || !this.config) return;
    this.#writeGuest("\r\n[   42.000000] Kernel panic - not syncing: emulated panic\r\n");
    if (this.config.pvpanic) this.#events.emit("guest", "panic", { event: "panic" });
  }

  /** A line typed on a guest console. */
  #onConsoleLine(line: string): void {
    const act = { poweroff: "poweroff", reboot: "reboot", panic: "panic" }[line];
    if (!act || !this.vm || this.vm.state !== "Running") {
      if (this.vm) {
        this.#writeGuest(line === "" ? LOGIN_PROMPT : `Login incorrect\r\n\r\n${LOGIN_PROMPT}`);
      }
      return;
    }
    this.exclusive(() => {
      if (act === "poweroff") {
        this.#writeGuest("[  OK  ] Reached target Power-Off.\r\n");
        return this.guestPoweroff();
      }
      if (act === "reboot") return this.guestReboot();
      return this.guestPanic();
    });
  }

  // ---- internals ----

  /**
   * Makes `fds` the tap queues of `net` (CH replaces any `fds` of the body with the received
   * ones; numbers written in a body are never valid descriptors, so they become -1) and logs
   * what they are. Whether they really are taps is checked when the device is created, as CH
   * does; the log says so at once.
   */
  #takeNetFds(net: NetConfig, fds: number[], action: Action): void {
    if (fds.length === 0) {
      if (net.fds) net.fds = net.fds.map(() => -1);
      return;
    }
    const queues = net.num_queues ?? 2;
    if (queues !== fds.length * 2) {
      throw vmError(
        400,
        action,
        CAUSE.validate,
        `Number of queues (${queues}) does not match the ${fds.length} tap fd(s) passed (one per queue pair)`,
      );
    }
    net.fds = fds.map(() => -1);
    this.#netFds.set(net, fds);
    try {
      const taps = inspectTapFds(fds);
      this.#o.log.info(
        "vmm",
        `Network device ${
          net.id ?? "(new)"
        }: ${fds.length} tap fd(s) received over the API socket for ${
          [...new Set(taps.map((t) => t.name))].join(", ")
        }`,
      );
    } catch (err) {
      this.#o.log.warn("vmm", `Network device ${net.id ?? "(new)"}: ${(err as Error).message}`);
    }
  }

  #releaseNetFds(net: object): void {
    for (const fd of this.#netFds.get(net) ?? []) closeFd(fd);
    this.#netFds.delete(net);
  }

  /** Forgets the config and closes the tap descriptors it held. */
  #dropConfig(): void {
    for (const net of this.config?.net ?? []) this.#releaseNetFds(net);
    this.config = null;
  }

  #openConsoles(): void {
    const c = this.config!;
    const consoles: HostConsole[] = [];
    try {
      for (const [role, cfg] of [["serial", c.serial], ["console", c.console]] as const) {
        if (cfg) {
          consoles.push(
            createHostConsole(role, cfg as ConsoleConfig, (l) => this.#onConsoleLine(l)),
          );
        }
      }
    } catch (err) {
      for (const h of consoles) h.close();
      throw err;
    }
    this.#consoles = consoles;
  }

  #closeConsoles(): void {
    for (const h of this.#consoles ?? []) h.close();
    this.#consoles = null;
  }

  #writeGuest(text: string): void {
    const [serial, console] = this.#consoles ?? [];
    serial?.write(text);
    if (this.config?.payload?.cmdline?.includes("console=hvc0")) console?.write(text);
  }

  async #startVm(action: Action, restoring: boolean): Promise<void> {
    const c = this.config!;
    const faults = this.#o.faults;
    if (faults.bootDelayMs) await sleep(faults.bootDelayMs);
    if (faults.failBoots > 0) {
      faults.failBoots--;
      throw vmError(
        500,
        action,
        "Error initializing VM",
        "Failed to create VM: Cannot allocate memory (os error 12)",
      );
    }
    const problem = validateVmConfig(c);
    if (problem) throw vmError(problem.status, action, CAUSE.validate, ...problem.causes);
    if (!this.#consoles) {
      try {
        this.#openConsoles();
      } catch (err) {
        if (!(err instanceof ConsoleError)) throw err;
        throw vmError(500, action, "Error creating console devices", ...err.causes);
      }
    }
    const vm: VmObject = {
      state: "Running",
      bus: new PciBus(),
      ids: new IdAllocator(),
      locks: new Map(),
      taps: new Map(),
      runMs: 0,
      runningSince: null,
      vcpuRemovalUntil: 0,
      poweroffOnResume: false,
      pendingActivation: [],
      timers: new Set(),
    };
    assignIds(c, vm.ids);
    try {
      for (const d of c.disks ?? []) {
        if (d.path && !d.vhost_user) requireFile(action, d.path, ...DISK_OPEN);
      }
      for (const d of c.disks ?? []) detectImageType(d);
      for (const n of c.net ?? []) {
        if (n.vhost_user) continue;
        try {
          vm.taps.set(n.id!, await openTap(n, this.#netFds.get(n)));
        } catch (err) {
          if (err instanceof TapError) {
            throw vmError(500, action, CAUSE.deviceManager, ...err.causes);
          }
          throw err;
        }
      }
      for (const d of c.disks ?? []) {
        const lock = this.#openDisk(action, d);
        if (lock) vm.locks.set(d.id!, lock);
      }
      if (!restoring) this.#checkPayload(action, c);
      for (const id of bootDeviceOrder(c)) vm.bus.attach(id);
    } catch (err) {
      releaseResources(vm);
      throw err;
    }
    this.vm = vm;
    this.#setState(vm, "Running");
    vm.pendingActivation = bootDeviceOrder(c).filter((id) =>
      !id.startsWith("_vfio") && id !== "__pvpanic"
    );
  }

  #checkPayload(action: Action, c: VmConfig): void {
    const p = c.payload ?? {};
    if (p.firmware) requireFile(action, p.firmware, "Error manipulating firmware file");
    if (p.kernel) requireFile(action, p.kernel, "Cannot open kernel file");
    if (p.initramfs) requireFile(action, p.initramfs, "Cannot open initramfs file");
  }

  /** Locks a disk image like CH (OFD lock; shared for read-only disks). */
  #openDisk(action: Action, d: DiskConfig): HeldLock | null {
    if (!d.path || d.vhost_user) return null;
    requireFile(action, d.path, ...DISK_OPEN);
    detectImageType(d);
    const size = Deno.statSync(d.path).size;
    let lock: HeldLock | "busy";
    try {
      lock = tryLock(d.path, {
        shared: d.readonly === true,
        length: d.lock_granularity === "Full" ? 0 : size,
      });
    } catch (err) {
      throw vmError(500, action, ...DISK_OPEN, (err as Error).message);
    }
    if (lock === "busy") throw vmError(500, action, CAUSE.lockingError);
    return lock;
  }

  #resizeRam(c: VmConfig, desired: number): void {
    const mem = c.memory!;
    const current = mem.size + (mem.hotplugged_size ?? 0);
    if (desired === current) return;
    const max = mem.size + (mem.hotplug_size ?? 0);
    const fail = (why: string) => vmError(500, "resize", "Memory manager error", why);
    if (!mem.hotplug_size) throw fail("Memory hotplug is not configured (no hotplug_size)");
    if (desired > max) throw fail(`Cannot hotplug beyond ${max} bytes`);
    if (desired < current && mem.hotplug_method !== "VirtioMem") {
      throw fail("ACPI memory hotplug cannot shrink memory before a reboot");
    }
    if (desired < mem.size) throw fail(`Cannot resize below the boot memory (${mem.size} bytes)`);
    mem.hotplugged_size = desired - mem.size;
  }

  #stopVm(): void {
    const vm = this.vm;
    if (vm) releaseResources(vm);
    this.vm = null;
    this.#closeConsoles();
  }

  #setState(vm: VmObject, state: "Running" | "Paused"): void {
    const now = performance.now();
    if (vm.runningSince !== null) vm.runMs += now - vm.runningSince;
    vm.runningSince = state === "Running" ? now : null;
    vm.state = state;
  }

  #runMs(vm: VmObject): number {
    return vm.runMs + (vm.runningSince === null ? 0 : performance.now() - vm.runningSince);
  }

  /** After boot/reboot: the guest prints its boot log and brings up its virtio drivers. */
  #guestBooted(): void {
    const vm = this.vm;
    if (!vm || !this.config) return;
    this.#writeGuest(bootLog(this.config));
    this.#scheduleActivation(vm);
  }

  #scheduleActivation(vm: VmObject): void {
    this.#schedule(vm, this.#o.faults.activateDelayMs, () => {
      if (vm.state !== "Running") return;
      for (const id of vm.pendingActivation.splice(0)) {
        this.#events.emit("virtio-device", "activated", { id });
      }
    });
  }

  /** Runs `fn` on the control loop after `ms`, unless the VM is gone by then. */
  #schedule(vm: VmObject, ms: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(() => {
      vm.timers.delete(t);
      this.exclusive(() => {
        if (this.vm === vm) return fn();
      }).catch((err) => this.#o.log.error("vmm", String(err)));
    }, ms);
    vm.timers.add(t);
  }
}

const DISK_OPEN = [CAUSE.deviceManager, "Cannot open disk path"];

/** Fails like CH when a file the VM needs cannot be opened: `causes`, then the io error. */
function requireFile(action: Action, path: string, ...causes: string[]): void {
  try {
    Deno.statSync(path);
  } catch (err) {
    throw vmError(500, action, ...causes, ioErrorText(err));
  }
}

function releaseResources(vm: VmObject): void {
  for (const t of vm.timers) clearTimeout(t);
  vm.timers.clear();
  for (const l of vm.locks.values()) l.release();
  vm.locks.clear();
  for (const t of vm.taps.values()) t.close();
  vm.taps.clear();
}

/** CH's image type probe for disks without an explicit type (written back into the config). */
export function detectImageType(d: DiskConfig): void {
  if (!d.path || d.vhost_user || (d.image_type && d.image_type !== "Unknown")) return;
  const head = new Uint8Array(8);
  let file: Deno.FsFile | null = null;
  try {
    file = Deno.openSync(d.path, { read: true });
    file.readSync(head);
  } catch {
    return;
  } finally {
    file?.close();
  }
  const text = new TextDecoder("latin1").decode(head);
  if (text.startsWith("QFI\xfb")) d.image_type = "Qcow2";
  else if (text === "vhdxfile") d.image_type = "Vhdx";
  else d.image_type = "Raw";
}

function addToConfig(c: VmConfig, list: DeviceList | "vsock", device: unknown): void {
  if (list === "vsock") {
    c.vsock = device as VmConfig["vsock"];
    return;
  }
  const arr = (c[list] ?? []) as unknown[];
  arr.push(device);
  (c as Record<string, unknown>)[list] = arr;
}

function removeFromConfig(c: VmConfig, id: string): boolean {
  for (const { list } of DEVICE_LISTS) {
    const arr = c[list] as { id?: string }[] | undefined;
    const i = arr?.findIndex((d) => d.id === id) ?? -1;
    if (arr && i >= 0) {
      arr.splice(i, 1);
      if (arr.length === 0) delete c[list];
      return true;
    }
  }
  if (c.vsock?.id === id) {
    delete c.vsock;
    return true;
  }
  return false;
}
