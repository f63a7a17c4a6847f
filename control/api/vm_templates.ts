/**
 * `/v1/vm-templates`: reusable VM fields (boot, sizing, cloud-init, placement, NICs), and
 * `POST /v1/vms/{id}/template`, which makes a template from an existing VM.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { InvalidArgumentError, NotFoundError } from "../../shared/errors/errors.ts";
import { bootSources } from "../db/boot_sources.ts";
import { listNics } from "../db/network_interfaces.ts";
import { networks } from "../db/networks.ts";
import { type Db, equalTo } from "../db/query.ts";
import { type VmTemplateRow, vmTemplates } from "../db/vm_templates.ts";
import { vms } from "../db/vms.ts";
import { checkBootSource, templateFieldsOf } from "../domain/vm_fields.ts";
import {
  body,
  checkVcpus,
  Description,
  errors,
  Id,
  IdParams,
  json,
  mergePatch,
  Name,
  PageQuery,
  Timestamp,
  validationHook,
} from "./common.ts";
import { createResource, deleteRoute, getRoute, listRoute, patchRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import {
  BootMode,
  Config,
  Hypervisor,
  PlacementInput,
  TemplateNic,
  VmConsoleMode,
  VmFieldsInput,
  vmFieldsPatch,
} from "./vm_schemas.ts";

export const VmTemplate = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  hypervisor: Hypervisor.nullable(),
  architecture: z.string().nullable(),
  boot_mode: BootMode.nullable(),
  boot_source_id: Id.nullable(),
  boot_vcpus: z.int().nullable(),
  max_vcpus: z.int().nullable(),
  memory_size: z.int().nullable(),
  memory_hotplug_size: z.int().nullable(),
  memory_shared: z.boolean().nullable(),
  memory_hugepages: z.boolean().nullable(),
  console: VmConsoleMode.nullable(),
  cloud_init_user_data: z.string().nullable(),
  cloud_init_meta_data: z.string().nullable(),
  cloud_init_network_config: z.string().nullable(),
  placement: PlacementInput.nullable(),
  tags: z.array(z.string()),
  config: Config,
  nics: z.array(TemplateNic),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("VmTemplate");

const NewVmTemplate = z.strictObject({
  name: Name,
  ...VmFieldsInput,
  nics: z.array(TemplateNic).max(16).nullable().optional(),
}).openapi("NewVmTemplate");

const VmTemplatePatch = z.strictObject({
  name: Name.optional(),
  ...vmFieldsPatch(),
  nics: z.array(TemplateNic).max(16).nullable().optional(),
}).openapi("VmTemplatePatch");

const NewVmTemplateFromVm = z.strictObject({
  name: Name,
  description: Description.nullable().optional(),
}).openapi("NewVmTemplateFromVm");

const ListQuery = z.object({ ...PageQuery, name: z.string().optional() });
const tags = ["vm-templates"];
const RT = "vm_template";

/** Checks references and combinations of a template's fields. */
async function checkTemplate(tx: Db, t: Partial<VmTemplateRow>): Promise<void> {
  if (t.boot_vcpus) checkVcpus(t.boot_vcpus, t.max_vcpus);
  if (t.boot_source_id) {
    const src = await bootSources.get(tx, t.boot_source_id);
    if (!src) {
      throw InvalidArgumentError.field(
        "boot_source_id",
        `boot source ${t.boot_source_id} not found`,
      );
    }
    if (t.boot_mode) checkBootSource(t.boot_mode, src);
  }
  for (const [i, nic] of (t.nics ?? []).entries()) {
    if (!await networks.get(tx, nic.network_id)) {
      throw InvalidArgumentError.field(
        `nics.${i}.network_id`,
        `network ${nic.network_id} not found`,
      );
    }
  }
}

/** The templates router. */
export function vmTemplatesRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  listRoute(app, deps, {
    path: "/vm-templates",
    tags,
    summary: "List VM templates",
    item: VmTemplate,
    listName: "VmTemplateList",
    query: ListQuery,
    list: (db, f, page) => vmTemplates.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/vm-templates",
    tags,
    summary: "Create a VM template",
    body: NewVmTemplate,
    schema: VmTemplate,
    resourceType: RT,
    insert: async (tx, input) => {
      const fields = {
        ...input,
        tags: input.tags ?? [],
        config: input.config ?? {},
        nics: input.nics ?? [],
      };
      await checkTemplate(tx, fields);
      return vmTemplates.insert(tx, fields);
    },
  });

  getRoute(app, deps, {
    path: "/vm-templates/{id}",
    tags,
    summary: "Get a VM template",
    schema: VmTemplate,
    found: "The template",
    resourceType: RT,
    get: vmTemplates.get,
  });

  patchRoute(app, deps, {
    path: "/vm-templates/{id}",
    tags,
    summary: "Update a VM template (JSON merge patch); existing VMs keep their fields",
    body: VmTemplatePatch,
    schema: VmTemplate,
    resourceType: RT,
    get: vmTemplates.get,
    update: async (tx, id, patch, cur) => {
      const fields: Record<string, unknown> = { ...patch };
      if (patch.placement !== undefined) {
        const merged = mergePatch(cur.placement ?? {}, patch.placement);
        const parsed = PlacementInput.nullable().safeParse(merged);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw InvalidArgumentError.field(["placement", ...issue.path].join("."), issue.message);
        }
        fields.placement = parsed.data;
      }
      if (patch.config !== undefined) {
        fields.config = mergePatch(cur.config, patch.config) ?? {};
      }
      if (patch.tags === null) fields.tags = [];
      if (patch.nics === null) fields.nics = [];
      await checkTemplate(tx, { ...cur, ...fields });
      return vmTemplates.update(tx, id, fields);
    },
  });

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms/{id}/template",
      tags,
      summary: "Create a VM template from a VM",
      description: "Copies the VM's reusable fields (hypervisor, architecture, boot mode and " +
        "source, sizing, console, cloud-init, placement, tags, config) and one template NIC " +
        "per NIC (network and MTU). Ids, host, status, disks, addresses and MACs are not copied.",
      request: { params: IdParams, body: body(NewVmTemplateFromVm) },
      responses: { 201: json(VmTemplate, "The template", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const row = await createResource(c, deps, {
        resourceType: RT,
        collection: "/v1/vm-templates",
        insert: async (tx) => {
          const vm = await vms.get(tx, id);
          if (!vm) throw NotFoundError.of("vm", id);
          return vmTemplates.insert(tx, {
            ...templateFieldsOf(vm, await listNics(tx, id)),
            name: input.name,
            description: input.description ?? null,
          });
        },
        summary: (t) => ({ name: t.name, vm_id: id }),
      });
      return c.json(row, 201);
    },
  );

  deleteRoute(app, deps, {
    path: "/vm-templates/{id}",
    tags,
    summary: "Delete a VM template (VMs made from it are kept)",
    resourceType: RT,
    get: vmTemplates.get,
    remove: vmTemplates.remove,
  });
  return app;
}
