/**
 * The steps of `disk_create`: choose an `up` host that has the pool attached (a clone's base
 * host, or the one asked for, when the pool is local) and record it on the object (a local
 * pool's file exists on that host only), make sure the pool is attached there, have its node create the file (blank raw or qcow2, qcow2 overlay on
 * a base image, or a download) with the node's streamed progress mapped into the job, and mark
 * the storage object ready. A retry deletes a half-made file first; a final failure or a
 * cancel marks the object `failed` with the reason.
 */
import {
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
} from "../../shared/errors/errors.ts";
import type { TransactionSql } from "postgres";
import type { node } from "../../shared/proto/mod.ts";
import type { Emit } from "../events/bus.ts";
import type { JobRow } from "../db/jobs.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import { run } from "../db/query.ts";
import { assertPathFree, storageObjects } from "../db/storage_objects.ts";
import { objectFile } from "../domain/node_spec.ts";
import { applyPool } from "../nodes/attachments.ts";
import type { JobContext, Step } from "./plan.ts";

/** A disk creation whose node is silent this many call timeouts long is abandoned. */
const DISK_IDLE_FACTOR = 6;

/** The params the disk routes queue (see api/storage_pools.ts). */
export interface DiskParams {
  kind: "blank" | "clone" | "download";
  storage_pool_id: string;
  pool_path: string;
  path: string;
  format: "raw" | "qcow2";
  size_bytes: number | null;
  base_path: string | null;
  base_format: "raw" | "qcow2" | null;
  source_url: string | null;
  sha256: string | null;
  /** The clone's base object (absent in jobs queued before it was recorded). */
  base_object_id?: string | null;
  /** The host the file must be made on (local pool, decided at queue time), or null. */
  host_id?: string | null;
}

function params(ctx: JobContext): DiskParams {
  return ctx.job.params as unknown as DiskParams;
}

async function chosenHost(ctx: JobContext): Promise<HostRow> {
  const host = await getHost(ctx.svc.sql, ctx.data.host_id as string);
  if (!host) throw new FailedPreconditionError(`host ${ctx.data.host_id} no longer exists`);
  return host;
}

/** The CreateDisk request for the params. */
export function createDiskRequest(
  p: DiskParams,
  transferId: string,
): node.CreateDiskRequest.$Properties {
  const req: node.CreateDiskRequest.$Properties = {
    path: objectFile(p.pool_path, p.path),
    sizeBytes: p.size_bytes ?? 0,
    transferId,
  };
  if (p.kind === "download") {
    req.url = { url: p.source_url!, ...(p.sha256 ? { sha256: p.sha256 } : {}) };
  } else if (p.kind === "clone") {
    req.overlay = {
      basePath: objectFile(p.pool_path, p.base_path!),
      baseFormat: p.base_format ?? "",
    };
  } else if (p.format === "qcow2") req.qcow2 = {};
  else req.blank = { preallocate: false };
  return req;
}

/** Why the disk must be made on one host: the caller pinned it, or the base lives there. */
async function pinnedHost(ctx: JobContext): Promise<{ id: string; why: string } | null> {
  const p = params(ctx);
  if (p.base_object_id) {
    const base = await storageObjects.get(ctx.svc.sql, p.base_object_id);
    if (base?.host_id) {
      return { id: base.host_id, why: `its base ${base.name} lives there` };
    }
  }
  return p.host_id ? { id: p.host_id, why: "it was asked for" } : null;
}

/**
 * The host to make the file on: the pinned one (which must be up with the pool attached), or
 * an `up` host with the pool attached (by name, for predictability). A local pool's file then
 * belongs to that host: it is recorded on the object now, so even a half-made file is known.
 */
export const chooseNodeStep: Step = {
  name: "choose_node",
  async run(ctx) {
    if (ctx.data.host_id) return;
    const pool = params(ctx).storage_pool_id;
    const pin = await pinnedHost(ctx);
    const [row] = await run(() =>
      ctx.svc.sql<{ id: string; name: string; status: string; attached: boolean }[]>`
        select h.id, h.name, h.status::text as status,
               (a.host_id is not null and a.status <> 'failed') as attached
        from hosts h
        left join host_storage_pools a on a.host_id = h.id and a.storage_pool_id = ${pool}
        where ${pin ? ctx.svc.sql`h.id = ${pin.id}` : ctx.svc.sql`a.host_id is not null`}
        order by (h.status = 'up' and a.status <> 'failed') desc nulls last, h.name, h.id
        limit 1`
    );
    if (pin) {
      const problem = !row
        ? "no longer exists"
        : row.status !== "up"
        ? `is ${row.status}`
        : !row.attached
        ? `does not have storage pool ${pool} attached`
        : null;
      if (problem) {
        throw new FailedPreconditionError(
          `the disk must be created on host ${row?.name ?? pin.id} (${pin.why}), which ${problem}`,
        );
      }
    } else if (!row || row.status !== "up" || !row.attached) {
      throw new FailedPreconditionError(
        `no up host has storage pool ${pool} attached; attach it to a host (POST ` +
          `/v1/storage-pools/${pool}/hosts) or bring one up`,
      );
    }
    const [{ type, name }] = await run(() =>
      ctx.svc.sql<{ type: string; name: string }[]>`
        select type::text, name from storage_pools where id = ${pool}`
    );
    const objectHost = type === "local" ? row!.id : null;
    await ctx.transaction(async (tx) => {
      // The API checked the path against every host; this guards a concurrent registration.
      const id = ctx.job.resource_id!;
      await assertPathFree(tx, { id: pool, name }, params(ctx).path, objectHost, id);
      await storageObjects.update(tx, id, { host_id: objectHost });
    });
    ctx.data.host_id = row!.id;
    ctx.data.object_host_id = objectHost;
  },
};

/** The pool is attached on the chosen host's node. */
export const ensurePoolStep: Step = {
  name: "ensure_pool",
  async run(ctx) {
    await applyPool(ctx.svc, await chosenHost(ctx), params(ctx).storage_pool_id, ctx.signal);
  },
};

/** The node creates the file; its progress becomes the job's. */
export const createDiskStep: Step = {
  name: "create_disk",
  async run(ctx) {
    const host = await chosenHost(ctx);
    const client = ctx.svc.nodes.get(host);
    const req = createDiskRequest(params(ctx), ctx.job.id);
    if (ctx.data.create_started) {
      // A previous attempt may have left a partial file: it is ours (the object is creating).
      await client.call("DeleteDisk", (o, n) => n.files.deleteDisk({ path: req.path }, o), {
        signal: ctx.signal,
      });
    }
    ctx.data.create_started = true;
    await ctx.save();
    let final: node.TransferResponse | undefined;
    // A download may take long, but a node that stops reporting is stuck: give up on it.
    const idleMs = DISK_IDLE_FACTOR * ctx.svc.config.nodes.call_timeout_ms;
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), idleMs);
    try {
      for await (
        const msg of client.stream("CreateDisk", (o, n) => n.files.createDisk(req, o), {
          // A cancel stops a long transfer too; the undo deletes the partial file.
          signal: AbortSignal.any([ctx.waitSignal, idle.signal]),
        })
      ) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), idleMs);
        if (msg.isFinal) {
          final = msg;
          break;
        }
        const total = Number(msg.totalBytes);
        const done = Number(msg.bytesWritten);
        await ctx.progress(total > 0 ? done / total : 0, `${done} of ${total || "?"} bytes`);
      }
    } catch (err) {
      if (ctx.waitSignal.aborted && !ctx.signal.aborted) throw ctx.waitSignal.reason;
      if (idle.signal.aborted && !ctx.signal.aborted) {
        throw new DeadlineExceededError(
          `node ${host.name} reported no progress creating the disk for ${idleMs / 1000} s`,
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!final) throw new InternalError(`node ${host.name} ended CreateDisk without a result`);
    if (!final.success) {
      throw new FailedPreconditionError(
        `node ${host.name} could not create the disk: ${final.error}`,
      );
    }
    ctx.data.bytes = Number(final.bytesWritten);
  },
};

/** The storage object is ready (with its size once known). */
export const markReadyStep: Step = {
  name: "mark_ready",
  async run(ctx) {
    const p = params(ctx);
    await ctx.transaction(async (tx) => {
      await storageObjects.update(tx, ctx.job.resource_id!, {
        status: "ready",
        status_reason: null,
        ...(ctx.data.object_host_id !== undefined ? { host_id: ctx.data.object_host_id } : {}),
        ...(p.size_bytes === null && ctx.data.bytes !== undefined
          ? { size_bytes: ctx.data.bytes }
          : {}),
      });
    });
  },
};

/** After a final failure: the object is `failed` with the reason; a partial file is removed. */
export async function undoDisk(ctx: JobContext, error: Error): Promise<void> {
  if (ctx.data.create_started && ctx.data.host_id) {
    const host = await getHost(ctx.svc.sql, ctx.data.host_id as string);
    if (host) {
      const client = ctx.svc.nodes.get(host);
      const path = objectFile(params(ctx).pool_path, params(ctx).path);
      await client.call("DeleteDisk", (o, n) => n.files.deleteDisk({ path }, o)).catch((err) =>
        ctx.log.warn("removing a partial disk failed", { err })
      );
    }
  }
  await ctx.transaction((tx) =>
    storageObjects.update(tx, ctx.job.resource_id!, {
      status: "failed",
      status_reason: error.message,
    })
  );
}

/** A disk creation cancelled before it ran: its object (recorded `creating`) is `failed`. */
export async function releaseDisk(
  tx: TransactionSql,
  _emit: Emit,
  job: JobRow,
  reason: string,
): Promise<void> {
  const object = await storageObjects.get(tx, job.resource_id ?? "", true);
  if (object?.status !== "creating") return;
  await storageObjects.update(tx, object.id, {
    status: "failed",
    status_reason: `disk creation ${reason}`,
  });
}
