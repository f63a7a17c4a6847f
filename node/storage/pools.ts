/**
 * Storage pools attached to this node (`AttachStoragePool`/`DetachStoragePool`): a LOCAL pool
 * is a directory, remembered in the state store across restarts. The pool manager is also the
 * gatekeeper for paths: every disk, kernel, initramfs and firmware path is resolved through
 * it, and disk operations hold their paths (no two at once on one file) and their pool (no
 * detach while they run). Detaching never deletes anything in the pool.
 */
import { z } from "zod";
import { SerialQueue } from "../../shared/async/serial.ts";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  UnimplementedError,
} from "../../shared/errors/errors.ts";
import { logger } from "../../shared/log/logger.ts";
import { absolutePath, VM_ID } from "../../shared/net/names.ts";
import type { node } from "../../shared/proto/mod.ts";
import type { StateDocument, StateStore } from "../state/store.ts";
import { confinePath, isWithin, type Root } from "./paths.ts";

export const POOL_KINDS = ["local", "nfs", "overlaybd", "block"] as const;
export type PoolKind = typeof POOL_KINDS[number];

/** A validated attach request. */
export interface PoolSpec {
  id: string;
  kind: PoolKind;
  /** The pool directory (LOCAL). */
  path: string;
}

/** An attached pool as remembered across restarts. */
export interface StoragePool extends PoolSpec {
  attachedAt: string;
}

const Pool = z.object({
  id: z.string(),
  kind: z.enum(POOL_KINDS),
  path: z.string(),
  attachedAt: z.string(),
});

/** Answers which VMs use disks in a pool (provided by the VM manager). */
export type PoolUsageCheck = (pool: StoragePool) => Promise<string[]> | string[];

/** Paths held by a disk operation; release (or `using`) when it ends. */
export interface PathHold extends Disposable {
  release(): void;
}

/** Outcome of `reconcile()`. */
export interface PoolReconcileReport {
  available: string[];
  /** Pools whose directory is missing (e.g. a mount that is not there yet); not recreated. */
  missing: { id: string; path: string }[];
}

/** System directories a pool may never be, or be inside of. */
const FORBIDDEN_ROOTS = [
  "/proc",
  "/sys",
  "/dev",
  "/etc",
  "/boot",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib64",
];

const LocalConfig = z.object({ path: z.string().min(1) });

/** Validates a pool id (the control plane's UUID). */
export function poolId(id: string, field = "pool_id"): string {
  if (!VM_ID.test(id)) throw InvalidArgumentError.field(field, `"${id}" is not a valid pool id`);
  return id;
}

/** Turns an AttachStoragePoolRequest into a PoolSpec; kinds other than LOCAL are unimplemented. */
export function poolSpecFromRequest(req: node.AttachStoragePoolRequest.$Properties): PoolSpec {
  const id = poolId(req.poolId ?? "");
  const kind = POOL_KINDS[req.poolKind ?? 0];
  if (!kind) throw InvalidArgumentError.field("pool_kind", `unknown pool kind ${req.poolKind}`);
  if (kind !== "local") {
    throw new UnimplementedError(`storage pools of kind ${kind} are not supported by this node`);
  }
  let config: unknown;
  try {
    config = JSON.parse(req.configJson || "{}");
  } catch {
    throw InvalidArgumentError.field("config_json", "is not valid JSON");
  }
  const parsed = LocalConfig.safeParse(config);
  if (!parsed.success) {
    throw InvalidArgumentError.field("config_json", `a LOCAL pool needs {"path": "/abs/dir"}`);
  }
  return { id, kind, path: poolPath(parsed.data.path) };
}

/** Validates a pool directory: clean, absolute, and not a system directory. */
export function poolPath(path: string, field = "config_json.path"): string {
  const clean = absolutePath(path, field).replace(/(.)\/$/, "$1");
  if (clean === "/" || FORBIDDEN_ROOTS.some((r) => isWithin(clean, r))) {
    throw InvalidArgumentError.field(field, `${clean} is a system directory, not a pool`);
  }
  return clean;
}

/** The node's attached pools and the path policy built on them. */
export class PoolManager {
  readonly #doc: StateDocument<StoragePool[]>;
  readonly #log = logger().child({ component: "storage" });
  readonly #held = new Set<string>();
  readonly #busy = new Map<string, number>();
  #usage: PoolUsageCheck = () => [];
  readonly #queue = new SerialQueue();

  constructor(state: StateStore, readonly options: { firmwareDir?: string } = {}) {
    this.#doc = state.document("storage_pools", z.array(Pool), []);
  }

  /** Lets the VM manager say which VMs use a pool, so detaching it is refused while they do. */
  setUsageCheck(check: PoolUsageCheck): void {
    this.#usage = check;
  }

  /** The attached pools. */
  list(): Promise<StoragePool[]> {
    return this.#doc.read();
  }

  /** The pool with `id`, if attached. */
  async get(id: string): Promise<StoragePool | undefined> {
    return (await this.#doc.read()).find((p) => p.id === id);
  }

  /** Attaches (creating its directory) or re-attaches a pool; idempotent. */
  attach(spec: PoolSpec): Promise<StoragePool> {
    return this.#queue.run(async () => {
      if (spec.kind !== "local") {
        throw new UnimplementedError(`storage pools of kind ${spec.kind} are not supported`);
      }
      const prev = await this.get(spec.id);
      if (prev && prev.path !== spec.path && this.#busy.get(spec.id)) {
        throw new FailedPreconditionError(`pool ${spec.id} has disk operations running`);
      }
      await Deno.mkdir(spec.path, { recursive: true, mode: 0o750 });
      const stat = await Deno.stat(spec.path);
      if (!stat.isDirectory) {
        throw InvalidArgumentError.field("config_json.path", `${spec.path} is not a directory`);
      }
      poolPath(await Deno.realPath(spec.path), "config_json.path"); // no symlink into /etc
      const pool: StoragePool = {
        ...spec,
        attachedAt: prev?.attachedAt ?? new Date().toISOString(),
      };
      await this.#doc.update((all) => [...all.filter((p) => p.id !== spec.id), pool]);
      this.#log.info("storage pool attached", { pool_id: spec.id, path: spec.path });
      return pool;
    });
  }

  /**
   * Forgets a pool; its files stay where they are. Refused while disk operations run in it or
   * VMs use it. Detaching an unknown pool succeeds. Returns whether it was attached.
   */
  detach(id: string): Promise<boolean> {
    return this.#queue.run(async () => {
      const pool = await this.get(poolId(id));
      if (!pool) return false;
      if (this.#busy.get(id)) {
        throw new FailedPreconditionError(`pool ${id} has disk operations running`);
      }
      const users = await this.#usage(pool);
      if (users.length > 0) {
        throw new FailedPreconditionError(`pool ${id} is used by VMs: ${users.join(", ")}`);
      }
      await this.#doc.update((all) => all.filter((p) => p.id !== id));
      this.#log.info("storage pool detached", { pool_id: id, path: pool.path });
      return true;
    });
  }

  /** Checks every remembered pool after a restart; missing directories are reported, not made. */
  async reconcile(): Promise<PoolReconcileReport> {
    const report: PoolReconcileReport = { available: [], missing: [] };
    for (const pool of await this.#doc.read()) {
      const ok = await Deno.stat(pool.path).then((s) => s.isDirectory, () => false);
      if (ok) report.available.push(pool.id);
      else {
        this.#log.warn("storage pool directory missing", { pool_id: pool.id, path: pool.path });
        report.missing.push({ id: pool.id, path: pool.path });
      }
    }
    return report;
  }

  async #roots(): Promise<Root[]> {
    return (await this.#doc.read()).map((p) => ({ name: `pool ${p.id}`, path: p.path }));
  }

  /**
   * The real location of a disk (or kernel, initramfs) path, which must be inside a pool;
   * `noFollow` keeps a final symlink itself (for deleting it).
   */
  async resolve(
    path: string,
    field = "path",
    options: { noFollow?: boolean } = {},
  ): Promise<string> {
    return confinePath(path, await this.#roots(), field, options);
  }

  /** Like `resolve`, but firmware may also come from the configured firmware directory. */
  async resolveFirmware(path: string, field = "firmware"): Promise<string> {
    const roots = await this.#roots();
    if (this.options.firmwareDir) {
      roots.push({ name: "firmware dir", path: this.options.firmwareDir });
    }
    return confinePath(path, roots, field);
  }

  /**
   * Holds `paths` (resolved real paths) exclusively and their pools busy until released: a
   * second operation on the same file is a ConflictError, and the pools cannot be detached.
   */
  async hold(paths: string[]): Promise<PathHold> {
    // Taking the hold is serialized with attach/detach; the work under it is not.
    const pools = await this.#queue.run(async () => {
      const containing: string[] = [];
      for (const pool of await this.#doc.read()) {
        const real = await Deno.realPath(pool.path).catch(() => pool.path);
        if (paths.some((p) => isWithin(p, real))) containing.push(pool.id);
      }
      const clash = paths.find((p) => this.#held.has(p));
      if (clash) throw new ConflictError(`another disk operation is using ${clash}`);
      for (const p of paths) this.#held.add(p);
      for (const id of containing) this.#busy.set(id, (this.#busy.get(id) ?? 0) + 1);
      return containing;
    });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const p of paths) this.#held.delete(p);
      for (const id of pools) this.#busy.set(id, (this.#busy.get(id) ?? 1) - 1);
    };
    return { release, [Symbol.dispose]: release };
  }

  /** Runs `work` under `hold(paths)`. */
  async withPaths<T>(paths: string[], work: () => Promise<T>): Promise<T> {
    using _hold = await this.hold(paths);
    return await work();
  }
}
