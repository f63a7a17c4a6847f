/**
 * The one place that turns PostgreSQL errors into domain errors: unique violations become
 * AlreadyExists (naming the field), foreign-key violations "in use" on delete or InvalidArgument
 * naming the field on insert/update, check and data errors InvalidArgument, serialization
 * failures Conflict, lost connections Unavailable. Anything else passes through unchanged.
 */
import {
  AlreadyExistsError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  QaraxError,
  UnavailableError,
} from "../../shared/errors/errors.ts";

/** The fields of a postgres.js PostgresError this module reads. */
interface PgError {
  name: string;
  code: string;
  message: string;
  detail?: string;
  table_name?: string;
  column_name?: string;
  constraint_name?: string;
}

/** Singular API names of the tables, for messages. */
const NOUNS: Record<string, string> = {
  hosts: "host",
  vms: "vm",
  vm_disks: "disk",
  network_interfaces: "nic",
  networks: "network",
  host_networks: "network attachment",
  ip_allocations: "ip allocation",
  storage_pools: "storage pool",
  host_storage_pools: "storage pool attachment",
  storage_objects: "storage object",
  boot_sources: "boot source",
  instance_types: "instance type",
  vm_templates: "vm template",
  vm_snapshots: "snapshot",
  jobs: "job",
  audit_logs: "audit log",
};

/** Unique constraints whose key does not end with the field a user should change. */
const UNIQUE_FIELD: Record<string, string> = {
  hosts_address_port_key: "address",
};

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ENOENT",
]);

function isPgError(err: unknown): err is PgError {
  return err instanceof Error && err.name === "PostgresError" &&
    typeof (err as { code?: unknown }).code === "string";
}

function noun(table: string | undefined): string {
  return (table && NOUNS[table]) ?? table ?? "resource";
}

/** `Key (a, b)=(x, y) …` → columns and values (values split naively on ", "). */
function parseKey(detail: string | undefined): { columns: string[]; values: string } | null {
  const m = /^Key \((.+?)\)=\((.*)\)/.exec(detail ?? "");
  if (!m) return null;
  return { columns: m[1].split(",").map((c) => c.trim()), values: m[2] };
}

/** Maps `err` to a domain error when it is a database error we understand; else returns it. */
export function mapDbError(err: unknown): unknown {
  if (err instanceof QaraxError) return err;
  if (!isPgError(err)) {
    const code = (err as { code?: unknown })?.code;
    if (typeof code === "string" && CONNECTION_CODES.has(code)) {
      return new UnavailableError("the database is unavailable", { cause: err });
    }
    return err;
  }
  const cause = { cause: err };
  switch (err.code) {
    case "23505": {
      const key = parseKey(err.detail);
      const field = UNIQUE_FIELD[err.constraint_name ?? ""] ?? key?.columns.at(-1) ?? "id";
      const what = key ? `${key.columns.join(", ")} ${JSON.stringify(key.values)}` : "this key";
      return new AlreadyExistsError(`${noun(err.table_name)} with ${what} already exists`, {
        details: [{ field, message: "already exists" }],
        ...cause,
      });
    }
    case "23503": {
      const key = parseKey(err.detail);
      if (/is still referenced/.test(err.detail ?? "")) {
        const target = /on table "([^"]+)"/.exec(err.message)?.[1];
        return new FailedPreconditionError(
          `${noun(target)} ${key?.values ?? ""} is in use by a ${noun(err.table_name)}`.replace(
            /\s+/g,
            " ",
          ),
          cause,
        );
      }
      const field = key?.columns.at(-1) ?? "id";
      const target = /in table "([^"]+)"/.exec(err.detail ?? "")?.[1];
      return new InvalidArgumentError(`${field}: ${noun(target)} ${key?.values ?? ""} not found`, {
        details: [{ field, message: `${noun(target)} ${key?.values ?? ""} not found` }],
        ...cause,
      });
    }
    case "23514": {
      const table = err.table_name ?? "";
      const constraint = err.constraint_name ?? "";
      const field = constraint.startsWith(`${table}_`) && constraint.endsWith("_check")
        ? constraint.slice(table.length + 1, -"_check".length)
        : constraint;
      return new InvalidArgumentError(`${field}: value not allowed`, {
        details: [{ field, message: "value not allowed" }],
        ...cause,
      });
    }
    case "23502": {
      const field = err.column_name ?? "field";
      return new InvalidArgumentError(`${field}: required`, {
        details: [{ field, message: "required" }],
        ...cause,
      });
    }
    case "40001":
    case "40P01":
    case "55P03":
      return new ConflictError("a concurrent change got there first; retry the request", cause);
    case "57P01":
    case "57P02":
    case "57P03":
    case "08000":
    case "08003":
    case "08006":
      return new UnavailableError("the database is unavailable", cause);
  }
  // Class 22: data exceptions (bad uuid/enum/inet text, numbers out of range, strings too long).
  if (err.code.startsWith("22")) {
    return new InvalidArgumentError(`invalid value: ${err.message}`, cause);
  }
  return err;
}
