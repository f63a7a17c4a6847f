/**
 * `/v1/vms`: VM definitions. Create resolves each field from the request, an instance type, a
 * template and the server defaults, and adds the disks and NICs in the same transaction.
 * PATCH changes only what the VM's status allows (the action table in `domain/vm_status.ts`).
 * Lifecycle actions and delete are jobs (vm_actions.ts).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { InvalidArgumentError, NotFoundError } from "../../shared/errors/errors.ts";
import { bootSources } from "../db/boot_sources.ts";
import { instanceTypes } from "../db/instance_types.ts";
import { networks } from "../db/networks.ts";
import { networksOfVm } from "../db/network_interfaces.ts";
import { type Db, transaction } from "../db/query.ts";
import { vmTemplates } from "../db/vm_templates.ts";
import { vmFilters, type VmRow, vms } from "../db/vms.ts";
import {
  checkBootSource,
  normalizePlacement,
  resolveVmFields,
  type VmDefaults,
} from "../domain/vm_fields.ts";
import { assertVmAction, VM_STATUSES, type VmAction } from "../domain/vm_status.ts";
import { syncReservations } from "../nodes/attachments.ts";
import { audit } from "./audit.ts";
import {
  body,
  checkIfMatch,
  checkVcpus,
  errors,
  Id,
  IdParams,
  IfMatchHeaders,
  json,
  mergePatch,
  Name,
  PageQuery,
  patchBody,
  Tag,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import { getRoute, listRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { addNic, attachDisk, NewDisk, NewNic } from "./vm_devices.ts";
import {
  BootMode,
  Config,
  Hypervisor,
  Placement,
  PlacementInput,
  VmConsoleMode,
  VmFieldsInput,
  vmFieldsPatch,
} from "./vm_schemas.ts";

export const Vm = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  tags: z.array(z.string()),
  status: z.enum(VM_STATUSES),
  status_reason: z.string().nullable(),
  host_id: Id.nullable(),
  hypervisor: Hypervisor,
  architecture: z.string().nullable(),
  boot_mode: BootMode,
  boot_source_id: Id.nullable(),
  instance_type_id: Id.nullable(),
  vm_template_id: Id.nullable(),
  boot_vcpus: z.int(),
  max_vcpus: z.int(),
  memory_size: z.int(),
  memory_hotplug_size: z.int().nullable(),
  memory_shared: z.boolean(),
  memory_hugepages: z.boolean(),
  console: VmConsoleMode,
  cloud_init_user_data: z.string().nullable(),
  cloud_init_meta_data: z.string().nullable(),
  cloud_init_network_config: z.string().nullable(),
  placement: Placement,
  config: Config,
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("Vm");

const NewVm = z.strictObject({
  name: Name,
  instance_type_id: Id.optional().openapi({ description: "Sizing preset (below the request)" }),
  vm_template_id: Id.optional().openapi({ description: "Field preset (below the instance type)" }),
  ...VmFieldsInput,
  disks: z.array(NewDisk).max(16).optional(),
  nics: z.array(NewNic).max(16).optional().openapi({
    description: "Replaces the template's NICs when given",
  }),
}).openapi("NewVm");

const VmPatch = z.strictObject({
  name: Name.optional(),
  ...vmFieldsPatch(),
}).openapi("VmPatch");

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  status: z.enum(VM_STATUSES).optional(),
  host_id: Id.optional(),
  tag: z.union([Tag, z.array(Tag)]).optional().openapi({
    description: "Repeatable; a VM must carry every given tag",
  }),
});

/** Which action a change of each field needs (VM_ACTION_TABLE decides the statuses). */
const FIELD_ACTION: Record<string, VmAction> = {
  name: "update_metadata",
  description: "update_metadata",
  tags: "update_metadata",
  boot_vcpus: "update_sizing",
  max_vcpus: "update_sizing",
  memory_size: "update_sizing",
  memory_hotplug_size: "update_sizing",
  memory_shared: "update_sizing",
  memory_hugepages: "update_sizing",
  console: "update_config",
  hypervisor: "update_config",
  architecture: "update_config",
  boot_mode: "update_config",
  boot_source_id: "update_config",
  cloud_init_user_data: "update_config",
  cloud_init_meta_data: "update_config",
  cloud_init_network_config: "update_config",
  placement: "update_config",
  config: "update_config",
};

const tags = ["vms"];

/** Server defaults with the architecture resolved. */
function defaultsOf(deps: AppDeps): VmDefaults {
  const d = deps.config.vm_defaults;
  return {
    hypervisor: d.hypervisor,
    boot_mode: d.boot_mode,
    architecture: d.architecture || Deno.build.arch,
    boot_vcpus: d.boot_vcpus,
    memory_size: d.memory_size,
  };
}

async function checkBootSourceRef(tx: Db, id: string | null, mode: "kernel" | "firmware") {
  if (!id) return;
  const src = await bootSources.get(tx, id);
  if (!src) throw InvalidArgumentError.field("boot_source_id", `boot source ${id} not found`);
  checkBootSource(mode, src);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The VMs router (sub-resources are in vm_devices.ts). */
export function vmsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  listRoute(app, deps, {
    path: "/vms",
    tags,
    summary: "List VMs",
    item: Vm,
    listName: "VmList",
    page: "A page of VMs",
    query: ListQuery,
    list: (db, { tag, ...f }, page) => {
      const tagList = tag === undefined ? undefined : Array.isArray(tag) ? tag : [tag];
      return vms.list(db, vmFilters(db, { ...f, tags: tagList }), page);
    },
  });

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms",
      tags,
      summary: "Create a VM",
      description: "Each field comes from the request, else the instance type (sizing), else the " +
        "template, else the server's `vm_defaults`. Disks and NICs are added in the same " +
        "transaction; the VM starts as `created` (not on any node).",
      request: { body: body(NewVm) },
      responses: { 201: json(Vm, "The VM", true), ...errors(400, 409, 422) },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const row = await transaction(deps.sql, async (tx) => {
        const it = input.instance_type_id
          ? await instanceTypes.get(tx, input.instance_type_id)
          : undefined;
        if (input.instance_type_id && !it) {
          throw InvalidArgumentError.field(
            "instance_type_id",
            `instance type ${input.instance_type_id} not found`,
          );
        }
        const tpl = input.vm_template_id
          ? await vmTemplates.get(tx, input.vm_template_id)
          : undefined;
        if (input.vm_template_id && !tpl) {
          throw InvalidArgumentError.field(
            "vm_template_id",
            `vm template ${input.vm_template_id} not found`,
          );
        }
        const { disks, nics: requestNics, instance_type_id, vm_template_id, ...request } = input;
        const fields = resolveVmFields(
          { ...request, nics: requestNics?.map((n) => ({ network_id: n.network_id })) },
          it,
          tpl,
          defaultsOf(deps),
        );
        await checkBootSourceRef(tx, fields.boot_source_id, fields.boot_mode);
        const { nics: _templateNics, ...vmFields } = fields;
        const vm = await vms.insert(tx, {
          ...vmFields,
          name: input.name,
          description: input.description ?? null,
          instance_type_id: instance_type_id ?? null,
          vm_template_id: vm_template_id ?? null,
        });
        const nicInputs = requestNics ??
          fields.nics.map((n) => ({ ...n, mtu: n.mtu ?? undefined }));
        // Lock the networks in one order so concurrent creates cannot deadlock on them.
        for (const id of [...new Set(nicInputs.map((n) => n.network_id))].sort()) {
          await networks.get(tx, id, true);
        }
        for (const [i, nic] of nicInputs.entries()) await addNic(tx, vm, nic, `nics.${i}.`);
        for (const [i, disk] of (disks ?? []).entries()) {
          await attachDisk(tx, vm, disk, `disks.${i}.`);
        }
        await audit(tx, c, {
          action: "create",
          resource_type: "vm",
          resource_id: vm.id,
          summary: {
            name: vm.name,
            instance_type_id: vm.instance_type_id,
            vm_template_id: vm.vm_template_id,
            nics: nicInputs.length,
            disks: disks?.length ?? 0,
          },
        });
        return { ...vm, networkIds: nicInputs.map((n) => n.network_id) };
      });
      const { networkIds, ...vm } = row;
      // Its addresses are reserved on every host of its dhcp networks before it can boot.
      await syncReservations(deps, networkIds);
      c.header("Location", `/v1/vms/${vm.id}`);
      return c.json(withEtag(c, vm), 201);
    },
  );

  getRoute(app, deps, {
    path: "/vms/{id}",
    tags,
    summary: "Get a VM",
    schema: Vm,
    found: "The VM",
    resourceType: "vm",
    get: vms.get,
  });

  app.openapi(
    createRoute({
      method: "patch",
      path: "/vms/{id}",
      tags,
      summary: "Update a VM (JSON merge patch)",
      description: "Name, description and tags change in any status; sizing and boot/cloud-init/" +
        "placement fields only while the VM is created or shut down (409 naming the status).",
      request: { params: IdParams, headers: IfMatchHeaders, body: patchBody(VmPatch) },
      responses: { 200: json(Vm, "The updated VM", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = c.req.valid("json") as Record<string, unknown>;
      const row = await transaction(
        deps.sql,
        (tx) => updateVm(tx, c, deps, id, patch, (cur) => checkIfMatch(c, cur.version, `vm ${id}`)),
      );
      // The name is the DHCP hostname of its reservations.
      if (patch.name !== undefined) await syncReservations(deps, await networksOfVm(deps.sql, id));
      return c.json(withEtag(c, row), 200);
    },
  );

  return app;
}

/**
 * Applies a JSON merge patch to VM `id` with the PATCH rules (each changed field's action must
 * be allowed in its status, sizing and boot source checked) and audits it as `action`;
 * returns the VM. `guard` runs first, with the VM locked.
 */
export async function updateVm(
  tx: Db,
  c: Context<AppEnv>,
  deps: AppDeps,
  id: string,
  patch: Record<string, unknown>,
  guard: (cur: VmRow) => void | Promise<void> = () => {},
  action = "update",
): Promise<VmRow> {
  const cur = await vms.get(tx, id, true);
  if (!cur) throw NotFoundError.of("vm", id);
  await guard(cur);
  const fields: Partial<Record<keyof VmRow, unknown>> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const k = key as keyof VmRow;
    let next: unknown = value;
    if (k === "placement") next = checkPlacement(mergePatch(cur.placement, value));
    else if (k === "config") next = mergePatch(cur.config, value) ?? {};
    else if (k === "tags") next = [...new Set((value ?? []) as string[])];
    else if (value === null) next = nullValue(k, deps);
    if (!sameValue(next, cur[k])) fields[k] = next;
  }
  const changed = Object.keys(fields);
  const actions = new Set(changed.map((k) => FIELD_ACTION[k]));
  for (const a of actions) assertVmAction(cur, a);
  const merged = { ...cur, ...fields } as VmRow;
  checkVcpus(merged.boot_vcpus, merged.max_vcpus);
  if (fields.boot_source_id !== undefined || fields.boot_mode !== undefined) {
    await checkBootSourceRef(tx, merged.boot_source_id, merged.boot_mode);
  }
  const updated = changed.length ? await vms.update(tx, id, fields) : cur;
  if (!updated) throw NotFoundError.of("vm", id);
  if (changed.length) {
    await audit(tx, c, {
      action,
      resource_type: "vm",
      resource_id: id,
      summary: { name: updated.name, fields: changed },
    });
  }
  return updated;
}

/** Validates a merged placement (label keys, tags) and normalises it. */
function checkPlacement(merged: unknown) {
  const parsed = PlacementInput.safeParse(merged ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw InvalidArgumentError.field(["placement", ...issue.path].join("."), issue.message);
  }
  return normalizePlacement(parsed.data);
}

/** What a null in a merge patch sets a non-nullable VM field back to. */
function nullValue(k: keyof VmRow, deps: AppDeps): unknown {
  const d = deps.config.vm_defaults;
  switch (k) {
    case "hypervisor":
      return d.hypervisor;
    case "boot_mode":
      return d.boot_mode;
    case "memory_shared":
    case "memory_hugepages":
      return false;
    case "console":
      return "log";
    case "boot_vcpus":
    case "memory_size":
    case "name":
      throw InvalidArgumentError.field(k, "cannot be cleared");
    default:
      return null;
  }
}
