/**
 * CH's HTTP routing layer (`vmm/src/api/http`): which paths exist, which methods each accepts,
 * which actions take a body and which refuse one, JSON deserialization failures as
 * `["Failed to deserialize JSON", "<serde message>"]`, and how an action's outcome becomes
 * 200/204 or an error-chain body. Every action is run on the VMM's control loop.
 */
import { ApiFailure } from "./api_error.ts";
import type { HttpAnswer, HttpRequest } from "./http_server.ts";
import { JsonError } from "./json.ts";
import * as schema from "./schema.ts";
import { deserializeJson, type Schema } from "./serde.ts";
import type { AddKind, Vmm } from "./vmm.ts";
import { closeFd } from "../sys/libc.ts";
import type {
  RestoreConfig,
  VmConfig,
  VmResize,
  VmResizeDisk,
  VmResizeZone,
} from "../vmm/types.ts";

/**
 * The action a route runs; `body` is the deserialized request body (if the route has one) and
 * `fds` the descriptors that came with the request (the action owns them).
 */
type Run = (vmm: Vmm, body: unknown, fds: number[]) => unknown | Promise<unknown>;

type Route =
  /** VmActionHandler, PUT without body. */
  | { kind: "put"; run: Run }
  /** VmActionHandler, PUT with a JSON body. */
  | { kind: "put-body"; schema: Schema; run: Run }
  /** VmActionHandler, GET. */
  | { kind: "get"; run: Run }
  /** Dedicated handlers (vm.create, vm.info, vmm.ping, vmm.shutdown). */
  | { kind: "create" | "info" | "ping" | "vmm-shutdown" };

const add = (kind: AddKind, s: Schema): Route => ({
  kind: "put-body",
  schema: s,
  run: (vmm, body) => vmm.add(kind, body as Record<string, unknown>, []),
});

const unsupported = (action: "receiveMigration" | "sendMigration"): Run => () => {
  throw new ApiFailure(500, [
    "Error from API",
    action === "receiveMigration"
      ? "Error starting migration receiver"
      : "Error starting migration sender",
    "Live migration is not supported by the qarax CH emulator",
  ]);
};

/** Every route of a default (non guest_debug) CH build, under `/api/v1`. */
export const ROUTES: Record<string, Route> = {
  "vm.add-device": add("device", schema.DeviceConfig),
  "vm.add-user-device": add("user_device", schema.UserDeviceConfig),
  "vm.add-disk": add("disk", schema.DiskConfig),
  "vm.add-fs": add("fs", schema.FsConfig),
  "vm.add-generic-vhost-user": add("generic_vhost_user", schema.GenericVhostUserConfig),
  // Tap queues may come as descriptors (macvtap); they replace any `fds` in the body.
  "vm.add-net": {
    kind: "put-body",
    schema: schema.NetConfig,
    run: (vmm, body, fds) => vmm.add("net", body as Record<string, unknown>, fds),
  },
  "vm.add-pmem": add("pmem", schema.PmemConfig),
  "vm.add-vdpa": add("vdpa", schema.VdpaConfig),
  "vm.add-vsock": add("vsock", schema.VsockConfig),
  "vm.boot": { kind: "put", run: (vmm) => vmm.boot() },
  "vm.counters": { kind: "get", run: (vmm) => vmm.counters() },
  "vm.create": { kind: "create" },
  "vm.delete": { kind: "put", run: (vmm) => vmm.delete() },
  "vm.info": { kind: "info" },
  "vm.pause": { kind: "put", run: (vmm) => vmm.pause() },
  "vm.power-button": { kind: "put", run: (vmm) => vmm.powerButton() },
  "vm.reboot": { kind: "put", run: (vmm) => vmm.reboot() },
  "vm.receive-migration": {
    kind: "put-body",
    schema: schema.ReceiveMigrationData,
    run: unsupported("receiveMigration"),
  },
  "vm.remove-device": {
    kind: "put-body",
    schema: schema.VmRemoveDevice,
    run: (vmm, body) => vmm.removeDevice((body as { id: string }).id),
  },
  "vm.resize": {
    kind: "put-body",
    schema: schema.VmResize,
    run: (vmm, body) => vmm.resize(body as VmResize),
  },
  "vm.resize-disk": {
    kind: "put-body",
    schema: schema.VmResizeDisk,
    run: (vmm, body) => vmm.resizeDisk(body as VmResizeDisk),
  },
  "vm.resize-zone": {
    kind: "put-body",
    schema: schema.VmResizeZone,
    run: (vmm, body) => vmm.resizeZone(body as VmResizeZone),
  },
  "vm.restore": {
    kind: "put-body",
    schema: schema.RestoreConfig,
    run: (vmm, body, fds) => vmm.restore(body as RestoreConfig, fds),
  },
  "vm.resume": { kind: "put", run: (vmm) => vmm.resume() },
  "vm.send-migration": {
    kind: "put-body",
    schema: schema.SendMigrationData,
    run: unsupported("sendMigration"),
  },
  "vm.shutdown": { kind: "put", run: (vmm) => vmm.shutdown() },
  "vm.snapshot": {
    kind: "put-body",
    schema: schema.VmSnapshotConfig,
    run: (vmm, body) => vmm.snapshot((body as { destination_url: string }).destination_url),
  },
  "vmm.ping": { kind: "ping" },
  "vmm.shutdown": { kind: "vmm-shutdown" },
  "vm.nmi": { kind: "put", run: (vmm) => vmm.nmi() },
};

const PREFIX = "/api/v1/";

function closeFds(fds: number[]): void {
  for (const fd of fds.splice(0)) closeFd(fd);
}
const decoder = new TextDecoder();

/** The answer for an error chain (CH: JSON array of strings). */
function failure(status: number, chain: string[]): HttpAnswer {
  return { status, body: JSON.stringify(chain) };
}

const BAD_REQUEST = failure(400, ["Bad Request"]);
/** `Response::new(BadRequest)` with no body: 400 with Content-Length 0. */
const BARE_BAD_REQUEST: HttpAnswer = { status: 400 };

export interface RouterHooks {
  /** Endpoints (e.g. `vm.boot`) whose arrival kills the process (fault injection). */
  crashOn: Set<string>;
  crash: () => void;
  /** Ends the process after `vmm.shutdown` has been answered. */
  exit: (code: number) => void;
  log: (msg: string) => void;
}

/** Builds the request handler: route, check method and body, run on the control loop. */
export function createRouter(
  vmm: Vmm,
  hooks: RouterHooks,
): (req: HttpRequest) => Promise<HttpAnswer> {
  return async (req) => {
    const name = req.path.startsWith(PREFIX) ? req.path.slice(PREFIX.length) : null;
    const route = name !== null && Object.hasOwn(ROUTES, name) ? ROUTES[name] : undefined;
    if (!route || name === null) {
      closeFds(req.fds);
      return failure(404, ["Not Found"]);
    }
    hooks.log(`API request ${req.method} ${req.path}`);
    if (hooks.crashOn.has(name)) hooks.crash();
    try {
      return await vmm.exclusive(() => dispatch(vmm, route, req, hooks));
    } catch (err) {
      if (err instanceof ApiFailure) {
        hooks.log(`HTTP API error response: ${err.chain.join(": ")}`);
        return failure(err.status, err.chain);
      }
      throw err;
    } finally {
      // Descriptors an action did not take over (it splices those it keeps) are dropped, as
      // CH drops descriptors sent to endpoints that do not read them.
      closeFds(req.fds);
    }
  };
}

async function dispatch(
  vmm: Vmm,
  route: Route,
  req: HttpRequest,
  hooks: RouterHooks,
): Promise<HttpAnswer> {
  switch (route.kind) {
    case "create": {
      if (req.method !== "PUT") return BAD_REQUEST;
      if (!req.body) return BARE_BAD_REQUEST;
      const config = parse(req.body, schema.VmConfig);
      if ("status" in config) return config;
      vmm.create(config.value as VmConfig);
      return { status: 204 };
    }
    case "info":
      return req.method === "GET" ? json(vmm.info()) : BAD_REQUEST;
    case "ping":
      return req.method === "GET" ? json(vmm.ping()) : BAD_REQUEST;
    case "vmm-shutdown":
      if (req.method !== "PUT") return BAD_REQUEST;
      vmm.vmmShutdown();
      return { status: 200, after: () => hooks.exit(0) };
    default:
      break;
  }
  if (req.method !== "PUT" && req.method !== "GET") return BARE_BAD_REQUEST;
  if (route.kind === "get") {
    return req.method === "GET" ? outcome(await route.run(vmm, undefined, [])) : BAD_REQUEST;
  }
  if (req.method !== "PUT") return BAD_REQUEST;
  if (route.kind === "put") {
    if (req.body) return BAD_REQUEST;
    return outcome(await route.run(vmm, undefined, []));
  }
  if (!req.body) return BAD_REQUEST;
  const body = parse(req.body, route.schema);
  if ("status" in body) return body;
  return outcome(await route.run(vmm, body.value, req.fds));
}

function parse(raw: Uint8Array, s: Schema): { value: unknown } | HttpAnswer {
  try {
    return { value: deserializeJson(decoder.decode(raw), s) };
  } catch (err) {
    if (err instanceof JsonError) return failure(400, ["Failed to deserialize JSON", err.message]);
    throw err;
  }
}

/** null/undefined → 204; anything else → 200 with its JSON. */
function outcome(v: unknown): HttpAnswer {
  return v === undefined || v === null ? { status: 204 } : json(v);
}

function json(v: unknown): HttpAnswer {
  return { status: 200, body: JSON.stringify(v) };
}
