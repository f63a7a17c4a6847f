/**
 * Which host a storage object's file lives on. A local pool is a directory on each host it is
 * attached to, so its files exist on one host only; a shared pool's (nfs) files are on every
 * host (host null). Pure: the caller reads the pool, its attachments and the parent object.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

/** A host the pool is attached to. */
export interface AttachedHost {
  host_id: string;
  host_name: string;
}

/** What the decision needs. */
export interface ObjectHostInput {
  pool: { name: string; type: string };
  attached: readonly AttachedHost[];
  /** What the caller asked for: a host, null (on every host / unknown) or nothing. */
  requested: string | null | undefined;
  /** The backing object (qcow2 parent, clone base), whose host the new object must share. */
  parent?: { name: string; host_id: string | null } | null;
  /** Field name for errors (`host_id`). */
  field?: string;
}

function names(attached: readonly AttachedHost[]): string {
  return attached.length ? attached.map((a) => a.host_name).join(", ") : "none";
}

/**
 * The host of a new object: a host id, null (shared pool, or a file declared present on every
 * host), or undefined when the pool is local, attached to several hosts and nothing says which
 * (registration refuses that; disk creation lets the job choose). Throws 422s naming `host_id`.
 */
export function objectHost(input: ObjectHostInput): string | null | undefined {
  const { pool, attached, requested, parent } = input;
  const field = input.field ?? "host_id";
  if (pool.type !== "local") {
    if (requested) {
      throw InvalidArgumentError.field(
        field,
        `storage pool ${pool.name} is ${pool.type} (shared by its hosts): omit host_id`,
      );
    }
    return null;
  }
  const parentHost = parent?.host_id ?? null;
  const hostName = (id: string) => attached.find((a) => a.host_id === id)?.host_name ?? id;
  if (requested) {
    if (!attached.some((a) => a.host_id === requested)) {
      throw InvalidArgumentError.field(
        field,
        `host ${requested} does not have storage pool ${pool.name} attached (attached to: ${
          names(attached)
        })`,
      );
    }
    if (parentHost && parentHost !== requested) {
      throw InvalidArgumentError.field(
        field,
        `must be host ${hostName(parentHost)}, where ${parent!.name} (its backing file) lives`,
      );
    }
    return requested;
  }
  if (requested === null) {
    if (parentHost) {
      throw InvalidArgumentError.field(
        field,
        `cannot be null: its backing file ${parent!.name} lives on host ${
          hostName(parentHost)
        } only`,
      );
    }
    return null;
  }
  if (parentHost) return parentHost;
  if (attached.length === 1) return attached[0].host_id;
  if (attached.length === 0) return null;
  return undefined;
}

/** The 422 for a local-pool registration that does not say which host holds the file. */
export function ambiguousHost(pool: { name: string }, attached: readonly AttachedHost[]) {
  return InvalidArgumentError.field(
    "host_id",
    `required: storage pool ${pool.name} is local and attached to ${attached.length} hosts (${
      names(attached)
    }); give the host whose directory holds the file, or null if you copied it to every one`,
  );
}
