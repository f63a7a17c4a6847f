/** `/v1/boot-sources`: a kernel (+ initrd + params) or a firmware to boot VMs with. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { bootSources, bootSourceUsers } from "../db/boot_sources.ts";
import { type Db, equalTo } from "../db/query.ts";
import { storageObjects } from "../db/storage_objects.ts";
import { Description, Id, Name, PageQuery, Timestamp, validationHook } from "./common.ts";
import { deleteRoute, getRoute, listRoute, patchRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

export const BootSource = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  boot_mode: z.enum(["kernel", "firmware"]),
  kernel_image_id: Id.nullable(),
  initrd_image_id: Id.nullable(),
  kernel_params: z.string().nullable(),
  firmware_image_id: Id.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("BootSource");

const KernelParams = z.string().max(4096).refine(
  (s) => !/[\n\r\0]/.test(s),
  "must be one line",
);

const Fields = {
  description: Description.nullable().optional(),
  kernel_image_id: Id.nullable().optional(),
  initrd_image_id: Id.nullable().optional(),
  kernel_params: KernelParams.nullable().optional(),
  firmware_image_id: Id.nullable().optional(),
};
const NewBootSource = z.strictObject({ name: Name, ...Fields }).openapi("NewBootSource");
const BootSourcePatch = z.strictObject({ name: Name.optional(), ...Fields }).openapi(
  "BootSourcePatch",
);

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  boot_mode: z.enum(["kernel", "firmware"]).optional(),
});
const tags = ["boot-sources"];
const RT = "boot_source";

interface BootFields {
  kernel_image_id?: string | null;
  initrd_image_id?: string | null;
  kernel_params?: string | null;
  firmware_image_id?: string | null;
}

/** Kernel xor firmware; initrd and params only with a kernel; objects of the right type. */
async function checkBootFields(tx: Db, f: BootFields): Promise<void> {
  const kernel = f.kernel_image_id ?? null;
  const firmware = f.firmware_image_id ?? null;
  if (kernel && firmware) {
    throw InvalidArgumentError.field(
      "firmware_image_id",
      "cannot be combined with kernel_image_id",
    );
  }
  if (!kernel && !firmware) {
    throw InvalidArgumentError.field(
      "kernel_image_id",
      "give kernel_image_id or firmware_image_id",
    );
  }
  if (firmware && f.initrd_image_id) {
    throw InvalidArgumentError.field("initrd_image_id", "only applies to kernel boot");
  }
  if (firmware && f.kernel_params) {
    throw InvalidArgumentError.field("kernel_params", "only applies to kernel boot");
  }
  const wanted: [keyof BootFields, string][] = [
    ["kernel_image_id", "kernel"],
    ["initrd_image_id", "initrd"],
    ["firmware_image_id", "firmware"],
  ];
  for (const [field, type] of wanted) {
    const id = f[field];
    if (!id) continue;
    const obj = await storageObjects.get(tx, id);
    if (!obj) throw InvalidArgumentError.field(field, `storage object ${id} not found`);
    if (obj.type !== type) {
      throw InvalidArgumentError.field(
        field,
        `storage object ${obj.name} is a ${obj.type}, not a ${type}`,
      );
    }
  }
}

/** The boot sources router. */
export function bootSourcesRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  listRoute(app, deps, {
    path: "/boot-sources",
    tags,
    summary: "List boot sources",
    item: BootSource,
    listName: "BootSourceList",
    query: ListQuery,
    list: (db, f, page) => bootSources.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/boot-sources",
    tags,
    summary: "Create a boot source",
    body: NewBootSource,
    schema: BootSource,
    resourceType: RT,
    insert: async (tx, input) => {
      await checkBootFields(tx, input);
      return bootSources.insert(tx, input);
    },
  });

  getRoute(app, deps, {
    path: "/boot-sources/{id}",
    tags,
    summary: "Get a boot source",
    schema: BootSource,
    found: "The boot source",
    resourceType: RT,
    get: bootSources.get,
  });

  patchRoute(app, deps, {
    path: "/boot-sources/{id}",
    tags,
    summary: "Update a boot source (JSON merge patch)",
    body: BootSourcePatch,
    schema: BootSource,
    resourceType: RT,
    get: bootSources.get,
    update: async (tx, id, patch, cur) => {
      await checkBootFields(tx, { ...cur, ...patch });
      return bootSources.update(tx, id, patch);
    },
  });

  deleteRoute(app, deps, {
    path: "/boot-sources/{id}",
    tags,
    summary: "Delete a boot source",
    description: "Refused (409) while VMs or templates use it.",
    resourceType: RT,
    get: bootSources.get,
    guard: async (tx, b, id) => {
      const users = await bootSourceUsers(tx, id);
      if (users.length) {
        throw new FailedPreconditionError(`boot source ${b.name} is in use by ${users.join(", ")}`);
      }
    },
    remove: bootSources.remove,
  });
  return app;
}
