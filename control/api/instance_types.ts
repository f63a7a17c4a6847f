/** `/v1/instance-types`: sizing presets a VM can be created from. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { instanceTypes } from "../db/instance_types.ts";
import { equalTo } from "../db/query.ts";
import {
  Architecture,
  checkVcpus,
  Description,
  HotplugSize,
  Id,
  MemorySize,
  Name,
  PageQuery,
  Timestamp,
  validationHook,
  Vcpus,
} from "./common.ts";
import { deleteRoute, getRoute, listRoute, patchRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

export const InstanceType = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  architecture: z.string().nullable(),
  boot_vcpus: z.int(),
  max_vcpus: z.int().nullable(),
  memory_size: z.int(),
  memory_hotplug_size: z.int().nullable(),
  memory_shared: z.boolean().nullable(),
  memory_hugepages: z.boolean().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("InstanceType");

const Fields = {
  description: Description.nullable().optional(),
  architecture: Architecture.nullable().optional(),
  max_vcpus: Vcpus.nullable().optional(),
  memory_hotplug_size: HotplugSize.nullable().optional(),
  memory_shared: z.boolean().nullable().optional(),
  memory_hugepages: z.boolean().nullable().optional(),
};

const NewInstanceType = z.strictObject({
  name: Name,
  boot_vcpus: Vcpus,
  memory_size: MemorySize,
  ...Fields,
}).openapi("NewInstanceType");

const InstanceTypePatch = z.strictObject({
  name: Name.optional(),
  boot_vcpus: Vcpus.optional(),
  memory_size: MemorySize.optional(),
  ...Fields,
}).openapi("InstanceTypePatch");

const ListQuery = z.object({ ...PageQuery, name: z.string().optional() });
const tags = ["instance-types"];
const RT = "instance_type";

/** The instance types router. */
export function instanceTypesRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  listRoute(app, deps, {
    path: "/instance-types",
    tags,
    summary: "List instance types",
    item: InstanceType,
    listName: "InstanceTypeList",
    query: ListQuery,
    list: (db, f, page) => instanceTypes.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/instance-types",
    tags,
    summary: "Create an instance type",
    body: NewInstanceType,
    schema: InstanceType,
    resourceType: RT,
    insert: (tx, input) => {
      checkVcpus(input.boot_vcpus, input.max_vcpus);
      return instanceTypes.insert(tx, input);
    },
  });

  getRoute(app, deps, {
    path: "/instance-types/{id}",
    tags,
    summary: "Get an instance type",
    schema: InstanceType,
    found: "The instance type",
    resourceType: RT,
    get: instanceTypes.get,
  });

  patchRoute(app, deps, {
    path: "/instance-types/{id}",
    tags,
    summary: "Update an instance type (JSON merge patch); VMs made from it keep their sizes",
    body: InstanceTypePatch,
    schema: InstanceType,
    resourceType: RT,
    get: instanceTypes.get,
    update: (tx, id, patch, cur) => {
      checkVcpus(
        patch.boot_vcpus ?? cur.boot_vcpus,
        patch.max_vcpus === undefined ? cur.max_vcpus : patch.max_vcpus,
      );
      return instanceTypes.update(tx, id, patch);
    },
  });

  deleteRoute(app, deps, {
    path: "/instance-types/{id}",
    tags,
    summary: "Delete an instance type (VMs made from it are kept)",
    resourceType: RT,
    get: instanceTypes.get,
    remove: instanceTypes.remove,
  });
  return app;
}
