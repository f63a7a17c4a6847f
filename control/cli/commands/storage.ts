/**
 * `qarax pool …` (storage pools and their hosts) and `qarax disk …` (storage objects:
 * creating disks on a node — blank, linked clone or download — and registering files).
 */
import { InvalidArgumentError } from "../../../shared/errors/errors.ts";
import type { Field } from "../fields.ts";
import { bodyFromFlags, fieldOptions, flagsOf } from "../fields.ts";
import type { Context, GroupSpec, Input } from "../framework.ts";
import {
  ACTION_OPTIONS,
  createCommand,
  deleteCommand,
  getCommand,
  hostAttachmentCommands,
  listCommand,
  type ResourceDef,
  runAction,
  updateCommand,
} from "../resource.ts";
import { resolveId } from "../resolve.ts";
import { formatBytes } from "../units.ts";

interface Pool {
  id: string;
  name: string;
  type: string;
  status: string;
  path: string;
  capacity_bytes: number | null;
  [k: string]: unknown;
}

interface StorageObject {
  id: string;
  name: string;
  storage_pool_id: string;
  type: string;
  format: string | null;
  size_bytes: number | null;
  status: string;
  path: string;
  [k: string]: unknown;
}

const POOL_FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  { flag: "description", path: "description", type: "string", help: "free text", nullable: true },
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "local (default)",
    on: ["create", "filter"],
  },
  {
    flag: "path",
    path: "path",
    type: "string",
    value: "DIR",
    help: "directory of the pool on each host",
    required: true,
    on: ["create"],
  },
  {
    flag: "capacity",
    path: "capacity_bytes",
    type: "size",
    help: "capacity, e.g. 500GiB",
    nullable: true,
  },
  {
    flag: "config",
    path: "config",
    type: "json",
    value: "JSON",
    help: "type-specific settings (JSON object)",
  },
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "active | inactive",
    on: ["update", "filter"],
  },
];

const poolDef: ResourceDef<Pool> = {
  kind: "pool",
  plural: "storage pools",
  fields: POOL_FIELDS,
  columns: () => [
    { header: "ID", value: (p) => p.id },
    { header: "NAME", value: (p) => p.name },
    { header: "TYPE", value: (p) => p.type },
    { header: "STATUS", value: (p) => p.status },
    { header: "CAPACITY", value: (p) => formatBytes(p.capacity_bytes), right: true },
    { header: "PATH", value: (p) => p.path },
  ],
};

/** The `pool` group. */
export const poolGroup: GroupSpec = {
  name: "pool",
  aliases: ["pools", "storage-pool"],
  summary: "Storage pools (directories on hosts holding disks and images)",
  children: [
    listCommand(poolDef),
    getCommand(poolDef),
    createCommand(poolDef, {
      notes: "Example:\n  qarax pool create local --path /var/lib/qarax/pools/local",
    }),
    updateCommand(poolDef),
    deleteCommand(poolDef),
    ...hostAttachmentCommands<{ host_id: string; status: string; status_reason: string | null }>(
      "pool",
      {
        attachSummary: "Attach the pool to a host (its node prepares the directory)",
        columns: (names) => [
          { header: "HOST", value: (a) => names.of("host", a.host_id) },
          { header: "STATUS", value: (a) => a.status },
          { header: "REASON", value: (a) => a.status_reason },
        ],
      },
    ),
  ],
};

/** A storage object's `--pool`: a filter on lists and the scope of name lookups. */
const POOL_SCOPE = {
  options: {
    pool: {
      type: "string" as const,
      value: "POOL",
      help: "the object's pool (names are unique per pool)",
    },
  },
  async narrow(ctx: Context, input: Input) {
    const pool = input.opts.pool as string | undefined;
    if (pool === undefined) return { hint: "narrow with --pool" };
    return { narrow: { storage_pool_id: await resolveId(await ctx.client(), "pool", pool) } };
  },
};

const OBJECT_FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  {
    flag: "size",
    path: "size_bytes",
    type: "size",
    help: "recorded size",
    nullable: true,
    on: ["update"],
  },
  {
    flag: "pool",
    path: "storage_pool_id",
    type: { ref: "pool" },
    help: "only this pool",
    on: ["filter"],
  },
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "disk | image | iso | kernel | initrd | firmware | snapshot",
    on: ["filter"],
  },
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "creating | ready | failed",
    on: ["filter"],
  },
  {
    flag: "host",
    path: "host_id",
    type: { ref: "host" },
    help: "only files on this host (local pools)",
    on: ["filter"],
  },
];

/** `disk create`: POST /v1/storage-pools/{id}/disks. */
const CREATE_FIELDS: Field[] = [
  {
    flag: "size",
    path: "size_bytes",
    type: "size",
    help: "size of a blank disk (or a grown clone)",
  },
  { flag: "format", path: "format", type: "string", value: "FORMAT", help: "raw | qcow2" },
  {
    flag: "base",
    path: "base_object_id",
    type: { ref: "object" },
    help: "linked clone (qcow2 overlay) of this image or disk",
  },
  {
    flag: "source",
    path: "source_url",
    type: "string",
    value: "URL",
    help: "download from an http(s) URL",
  },
  {
    flag: "sha256",
    path: "sha256",
    type: "string",
    value: "HEX",
    help: "expected sha256 of the download",
  },
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "object type of a download: disk (default) | image | iso | kernel | initrd | firmware",
  },
  { flag: "path", path: "path", type: "string", value: "PATH", help: "file path inside the pool" },
  {
    flag: "host",
    path: "host_id",
    type: { ref: "host" },
    help: "local pool: the host to make it on (default: the base's host, or any up host)",
  },
];

/** `disk register`: POST /v1/storage-objects (a file that already exists in the pool). */
const REGISTER_FIELDS: Field[] = [
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "disk | image | iso | kernel | initrd | firmware | snapshot",
    required: true,
  },
  {
    flag: "path",
    path: "path",
    type: "string",
    value: "PATH",
    help: "file path inside the pool",
    required: true,
  },
  { flag: "format", path: "format", type: "string", value: "FORMAT", help: "raw | qcow2" },
  { flag: "size", path: "size_bytes", type: "size", help: "size" },
  { flag: "parent", path: "parent_id", type: { ref: "object" }, help: "backing object" },
  { flag: "sha256", path: "sha256", type: "string", value: "HEX", help: "content sha256" },
  {
    flag: "host",
    path: "host_id",
    type: { ref: "host" },
    help: "local pool: the host holding the file (required when the pool has several hosts)",
  },
];

const objectDef: ResourceDef<StorageObject> = {
  kind: "object",
  plural: "storage objects",
  fields: OBJECT_FIELDS,
  nameKinds: ["pool", "host"],
  scope: POOL_SCOPE,
  columns: (names) => [
    { header: "ID", value: (o) => o.id },
    { header: "NAME", value: (o) => o.name },
    { header: "POOL", value: (o) => names.of("pool", o.storage_pool_id) },
    { header: "TYPE", value: (o) => o.type },
    { header: "FORMAT", value: (o) => o.format },
    { header: "SIZE", value: (o) => formatBytes(o.size_bytes), right: true },
    { header: "STATUS", value: (o) => o.status },
    { header: "HOST", value: (o) => names.of("host", o.host_id as string | null) },
    { header: "PATH", value: (o) => o.path },
  ],
};

/** The `disk` group (storage objects). */
export const diskGroup: GroupSpec = {
  name: "disk",
  aliases: ["disks", "storage-object", "object"],
  summary: "Storage objects: disks, images, isos, kernels (and creating disks)",
  children: [
    listCommand(objectDef),
    getCommand(objectDef),
    {
      name: "create",
      summary:
        "Create a disk on a node: blank (--size), linked clone (--base) or download (--source)",
      args: ["name"],
      options: {
        pool: { type: "string", value: "POOL", help: "pool to create it in (required)" },
        ...fieldOptions(CREATE_FIELDS, "create"),
        ...ACTION_OPTIONS,
      },
      fieldFlags: { name: "<name>", ...flagsOf(CREATE_FIELDS) },
      notes: `The disk is recorded as creating and a job on a node attached to the pool makes it.
Examples:
  qarax disk create scratch --pool local --size 20GiB --wait
  qarax disk create web-1-root --pool local --base focal --format qcow2 --wait
  qarax disk create focal --pool local --type image --source https://example/focal.img --sha256 … --wait`,
      async run(ctx, input) {
        const client = await ctx.client();
        if (input.opts.pool === undefined) {
          throw InvalidArgumentError.field("--pool", "is required");
        }
        const pool = await resolveId(client, "pool", input.opts.pool as string);
        const body = {
          name: input.args.name,
          ...await bodyFromFlags(CREATE_FIELDS, input.opts, "create", ctx.client),
        };
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/storage-pools/${pool}/disks`,
          body,
          done: `disk ${input.args.name} created`,
        });
      },
    },
    createCommand(objectDef, {
      name: "register",
      verb: "registered",
      summary: "Record a file that already exists in a pool (image, kernel, iso, …)",
      options: {
        pool: { type: "string", value: "POOL", help: "the pool holding the file (required)" },
        ...fieldOptions(REGISTER_FIELDS, "create"),
        "every-host": {
          type: "boolean",
          help: "local pool: the file was copied to every host of the pool (no host recorded)",
        },
      },
      fieldFlags: { storage_pool_id: "--pool", ...flagsOf(REGISTER_FIELDS) },
      notes: `A file of a local pool exists on one host: say which with --host when the pool is
attached to several hosts (or --every-host if you copied it to all of them).
Example:
  qarax disk register vmlinux --pool local --type kernel --path images/vmlinux --host node-1`,
      async build(ctx, input, body) {
        if (input.opts.pool === undefined) {
          throw InvalidArgumentError.field("--pool", "is required");
        }
        body.storage_pool_id = await resolveId(
          await ctx.client(),
          "pool",
          input.opts.pool as string,
        );
        Object.assign(body, await bodyFromFlags(REGISTER_FIELDS, input.opts, "create", ctx.client));
        if (input.opts["every-host"]) {
          if (body.host_id !== undefined) {
            throw InvalidArgumentError.field("--every-host", "cannot be combined with --host");
          }
          body.host_id = null;
        }
      },
    }),
    updateCommand(objectDef),
    deleteCommand(objectDef),
  ],
};
