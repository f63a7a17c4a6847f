/**
 * The typed Cloud Hypervisor API client: one instance per VMM process, one kept-alive
 * connection, one method per endpoint the node uses. Error answers become `VmmApiError`
 * (kept as the `cause`) mapped onto domain errors; transport failures become Unavailable /
 * DeadlineExceeded. Answers are checked at this edge before being handed on as typed values.
 */
import { InternalError, QaraxError } from "../../shared/errors/errors.ts";
import {
  parseErrorBody,
  toDomainError,
  transportToDomainError,
  VmmApiError,
  VmmTransportError,
} from "./errors.ts";
import { requestWithFds } from "./fd_passing.ts";
import { type HttpResponse, UnixHttpConnection } from "./http.ts";
import {
  type DeviceConfig,
  type DiskConfig,
  type FsConfig,
  type NetConfig,
  type PciDeviceInfo,
  type PmemConfig,
  type RestoreConfig,
  VM_STATES,
  type VmConfig,
  type VmCounters,
  type VmInfo,
  type VmmPingResponse,
  type VmResize,
  type VmResizeDisk,
  type VmResizeZone,
  type VsockConfig,
} from "./types.ts";
import { type VmmVersion, vmmVersionOf } from "./version.ts";

/** Every endpoint the client calls, with how it is called. */
export const ENDPOINTS = {
  "vmm.ping": { method: "GET", retrySafe: true },
  "vmm.shutdown": { method: "PUT", retrySafe: false },
  "vm.create": { method: "PUT", retrySafe: false },
  "vm.boot": { method: "PUT", retrySafe: false },
  "vm.info": { method: "GET", retrySafe: true },
  "vm.counters": { method: "GET", retrySafe: true },
  "vm.shutdown": { method: "PUT", retrySafe: false },
  "vm.reboot": { method: "PUT", retrySafe: false },
  "vm.power-button": { method: "PUT", retrySafe: false },
  "vm.nmi": { method: "PUT", retrySafe: false },
  "vm.pause": { method: "PUT", retrySafe: false },
  "vm.resume": { method: "PUT", retrySafe: false },
  "vm.delete": { method: "PUT", retrySafe: true },
  "vm.add-disk": { method: "PUT", retrySafe: false },
  "vm.add-net": { method: "PUT", retrySafe: false },
  "vm.add-device": { method: "PUT", retrySafe: false },
  "vm.add-fs": { method: "PUT", retrySafe: false },
  "vm.add-pmem": { method: "PUT", retrySafe: false },
  "vm.add-vsock": { method: "PUT", retrySafe: false },
  "vm.remove-device": { method: "PUT", retrySafe: false },
  // Not retried: a repeated vCPU removal answers 429 although the first one worked.
  "vm.resize": { method: "PUT", retrySafe: false },
  // Absolute targets: repeating them converges on the same result.
  "vm.resize-disk": { method: "PUT", retrySafe: true },
  "vm.resize-zone": { method: "PUT", retrySafe: true },
  "vm.snapshot": { method: "PUT", retrySafe: false },
  "vm.restore": { method: "PUT", retrySafe: false },
} as const satisfies Record<string, { method: "GET" | "PUT"; retrySafe: boolean }>;

export type VmmEndpoint = keyof typeof ENDPOINTS;

/** Default per-request timeouts; slow calls (boot, snapshot, restore) get more. */
export const DEFAULT_TIMEOUTS_MS: Record<VmmEndpoint, number> = {
  "vmm.ping": 5_000,
  "vmm.shutdown": 30_000,
  "vm.create": 10_000,
  "vm.boot": 60_000,
  "vm.info": 10_000,
  "vm.counters": 10_000,
  "vm.shutdown": 30_000,
  "vm.reboot": 60_000,
  "vm.power-button": 10_000,
  "vm.nmi": 10_000,
  "vm.pause": 30_000,
  "vm.resume": 30_000,
  "vm.delete": 30_000,
  "vm.add-disk": 30_000,
  "vm.add-net": 30_000,
  "vm.add-device": 30_000,
  "vm.add-fs": 30_000,
  "vm.add-pmem": 30_000,
  "vm.add-vsock": 30_000,
  "vm.remove-device": 30_000,
  "vm.resize": 30_000,
  "vm.resize-disk": 30_000,
  "vm.resize-zone": 30_000,
  "vm.snapshot": 300_000,
  "vm.restore": 300_000,
};

export interface VmmClientOptions {
  /** The VMM's `--api-socket` path. */
  socketPath: string;
  /** Per-endpoint timeout overrides, in milliseconds. */
  timeoutsMs?: Partial<Record<VmmEndpoint, number>>;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Descriptors sent with the request (SCM_RIGHTS) on a connection of its own; only
   * `vm.add-net` and `vm.restore` use them (tap queues). The caller keeps and closes them.
   */
  fds?: number[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client for one VMM process; `close()` it (or `using`) when done. */
export class VmmClient implements Disposable {
  readonly socketPath: string;
  readonly #http: UnixHttpConnection;
  readonly #timeouts: Record<VmmEndpoint, number>;
  #version: VmmVersion | null = null;

  constructor(options: VmmClientOptions) {
    this.socketPath = options.socketPath;
    this.#http = new UnixHttpConnection(options.socketPath);
    this.#timeouts = { ...DEFAULT_TIMEOUTS_MS, ...options.timeoutsMs };
  }

  /** `GET vmm.ping`; also refreshes `cachedVersion`. */
  async ping(options?: CallOptions): Promise<VmmPingResponse> {
    const body = await this.#json("vmm.ping", undefined, options);
    const ping = expectRecord("vmm.ping", body);
    if (typeof ping.version !== "string") throw malformed("vmm.ping", "no version");
    const result = ping as unknown as VmmPingResponse;
    this.#version = vmmVersionOf(result);
    return result;
  }

  /** The VMM's version and features (pings once, then cached). */
  async version(options?: CallOptions): Promise<VmmVersion> {
    if (!this.#version) await this.ping(options);
    return this.#version!;
  }

  /** The version seen by the last ping, if any. */
  get cachedVersion(): VmmVersion | null {
    return this.#version;
  }

  /** `PUT vmm.shutdown`: deletes the VM and makes the process exit (answers 200, not 204). */
  async shutdownVmm(options?: CallOptions): Promise<void> {
    await this.#call("vmm.shutdown", undefined, options);
  }

  /** `PUT vm.create`: stores the config only; validation happens at boot. */
  async create(config: VmConfig, options?: CallOptions): Promise<void> {
    await this.#call("vm.create", config, options);
  }

  /** `PUT vm.boot`: validates the stored config and starts the VM. */
  async boot(options?: CallOptions): Promise<void> {
    await this.#call("vm.boot", undefined, options);
  }

  /** `GET vm.info`. */
  async info(options?: CallOptions): Promise<VmInfo> {
    const info = expectRecord("vm.info", await this.#json("vm.info", undefined, options));
    if (!VM_STATES.includes(info.state as VmInfo["state"])) {
      throw malformed("vm.info", `unknown state ${JSON.stringify(info.state)}`);
    }
    expectRecord("vm.info", info.config);
    return info as unknown as VmInfo;
  }

  /** `GET vm.counters` (only while the VM is booted). */
  async counters(options?: CallOptions): Promise<VmCounters> {
    const counters = expectRecord(
      "vm.counters",
      await this.#json("vm.counters", undefined, options),
    );
    for (const [id, values] of Object.entries(counters)) {
      for (const [name, value] of Object.entries(expectRecord("vm.counters", values))) {
        if (typeof value !== "number") throw malformed("vm.counters", `${id}.${name} not a number`);
      }
    }
    return counters as VmCounters;
  }

  /** `PUT vm.shutdown`: the config stays; `vm.info` then reports `Created`. */
  async shutdown(options?: CallOptions): Promise<void> {
    await this.#call("vm.shutdown", undefined, options);
  }

  /** `PUT vm.reboot`. */
  async reboot(options?: CallOptions): Promise<void> {
    await this.#call("vm.reboot", undefined, options);
  }

  /** `PUT vm.power-button`: ACPI power button; the guest decides what to do. */
  async powerButton(options?: CallOptions): Promise<void> {
    await this.#call("vm.power-button", undefined, options);
  }

  /** `PUT vm.nmi`. */
  async nmi(options?: CallOptions): Promise<void> {
    await this.#call("vm.nmi", undefined, options);
  }

  /** `PUT vm.pause`. */
  async pause(options?: CallOptions): Promise<void> {
    await this.#call("vm.pause", undefined, options);
  }

  /** `PUT vm.resume`. */
  async resume(options?: CallOptions): Promise<void> {
    await this.#call("vm.resume", undefined, options);
  }

  /** `PUT vm.delete`: idempotent; shuts a booted VM down first; the process keeps running. */
  async delete(options?: CallOptions): Promise<void> {
    await this.#call("vm.delete", undefined, options);
  }

  /** `PUT vm.add-disk`: PciDeviceInfo when hot-plugged, null when added to the config only. */
  addDisk(disk: DiskConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-disk", disk, options);
  }

  /** `PUT vm.add-net`: a tap by name, or pre-opened tap queues in `options.fds`. */
  addNet(net: NetConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-net", net, options);
  }

  /** `PUT vm.add-device` (VFIO by sysfs path). */
  addDevice(device: DeviceConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-device", device, options);
  }

  /** `PUT vm.add-fs` (virtio-fs; needs shared memory). */
  addFs(fs: FsConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-fs", fs, options);
  }

  /** `PUT vm.add-pmem`. */
  addPmem(pmem: PmemConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-pmem", pmem, options);
  }

  /** `PUT vm.add-vsock` (at most one per VM). */
  addVsock(vsock: VsockConfig, options?: CallOptions): Promise<PciDeviceInfo | null> {
    return this.#add("vm.add-vsock", vsock, options);
  }

  /** `PUT vm.remove-device`. */
  async removeDevice(id: string, options?: CallOptions): Promise<void> {
    await this.#call("vm.remove-device", { id }, options);
  }

  /** `PUT vm.resize` (vCPUs, RAM, balloon). */
  async resize(resize: VmResize, options?: CallOptions): Promise<void> {
    await this.#call("vm.resize", resize, options);
  }

  /** `PUT vm.resize-disk` (booted VM only). */
  async resizeDisk(resize: VmResizeDisk, options?: CallOptions): Promise<void> {
    await this.#call("vm.resize-disk", resize, options);
  }

  /** `PUT vm.resize-zone`. */
  async resizeZone(resize: VmResizeZone, options?: CallOptions): Promise<void> {
    await this.#call("vm.resize-zone", resize, options);
  }

  /** `PUT vm.snapshot` into `file://<dir>` (the VM must be Paused). */
  async snapshot(destinationUrl: string, options?: CallOptions): Promise<void> {
    await this.#call("vm.snapshot", { destination_url: destinationUrl }, options);
  }

  /** `PUT vm.restore` into an empty VMM (Paused afterwards unless `resume`). */
  async restore(restore: RestoreConfig, options?: CallOptions): Promise<void> {
    await this.#call("vm.restore", restore, options);
  }

  /** Closes the connection. */
  close(): void {
    this.#http.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async #add(
    endpoint: VmmEndpoint,
    body: DiskConfig | NetConfig | DeviceConfig | FsConfig | PmemConfig | VsockConfig,
    options?: CallOptions,
  ): Promise<PciDeviceInfo | null> {
    const res = await this.#call(endpoint, body, options);
    if (res.status === 204) return null;
    const info = expectRecord(endpoint, parseJson(endpoint, res.body));
    if (typeof info.id !== "string" || typeof info.bdf !== "string") {
      throw malformed(endpoint, "PciDeviceInfo without id or bdf");
    }
    return { id: info.id, bdf: info.bdf };
  }

  async #json(endpoint: VmmEndpoint, body: unknown, options?: CallOptions): Promise<unknown> {
    return parseJson(endpoint, (await this.#call(endpoint, body, options)).body);
  }

  /** Performs one call; a non-2xx answer or a transport failure throws a domain error. */
  async #call(endpoint: VmmEndpoint, body: unknown, options?: CallOptions): Promise<HttpResponse> {
    const spec = ENDPOINTS[endpoint];
    const payload = body === undefined ? null : encoder.encode(JSON.stringify(body));
    let res: HttpResponse;
    const timeoutMs = options?.timeoutMs ?? this.#timeouts[endpoint];
    try {
      if (options?.fds?.length) {
        if (options.signal?.aborted) {
          throw new VmmTransportError("cancelled", this.socketPath, "request cancelled");
        }
        res = await requestWithFds(
          this.socketPath,
          spec.method,
          `/api/v1/${endpoint}`,
          payload,
          options.fds,
          { timeoutMs },
        );
      } else {
        res = await this.#http.request(spec.method, `/api/v1/${endpoint}`, payload, {
          timeoutMs,
          retrySafe: spec.retrySafe,
          signal: options?.signal,
        });
      }
    } catch (err) {
      if (err instanceof VmmTransportError) throw transportToDomainError(endpoint, err);
      throw err;
    }
    if (res.status >= 200 && res.status < 300) return res;
    const text = decoder.decode(res.body);
    throw toDomainError(new VmmApiError(endpoint, res.status, parseErrorBody(text), text));
  }
}

/** The VmmApiError behind a domain error thrown by the client, if there is one. */
export function vmmApiErrorOf(err: unknown): VmmApiError | null {
  return err instanceof QaraxError && err.cause instanceof VmmApiError ? err.cause : null;
}

/** Polls `vmm.ping` until the VMM answers (a fresh process binds its socket quickly). */
export async function waitForVmm(
  socketPath: string,
  options: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<VmmPingResponse> {
  const deadline = performance.now() + (options.timeoutMs ?? 5_000);
  const interval = options.intervalMs ?? 10;
  let last: unknown;
  while (performance.now() < deadline && !options.signal?.aborted) {
    const client = new VmmClient({ socketPath, timeoutsMs: { "vmm.ping": 1_000 } });
    try {
      return await client.ping();
    } catch (err) {
      last = err;
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw transportToDomainError(
    "vmm.ping",
    new VmmTransportError("unreachable", socketPath, `VMM at ${socketPath} did not answer`, {
      cause: last,
    }),
  );
}

function parseJson(endpoint: string, body: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(body));
  } catch (err) {
    throw new InternalError(`${endpoint}: answer is not JSON`, { cause: err });
  }
}

function expectRecord(endpoint: string, v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw malformed(endpoint, "expected a JSON object");
  }
  return v as Record<string, unknown>;
}

function malformed(endpoint: string, why: string): InternalError {
  return new InternalError(`${endpoint}: malformed answer: ${why}`);
}
