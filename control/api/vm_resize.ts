/**
 * Resizing through the API (upstream names: `desired_vcpus`, `desired_ram`; `PUT` accepted
 * too). `POST /v1/vms/{id}/resize`: a running VM is hotplugged by a `vm_resize` job (202 +
 * the job; the rules and the host's capacity are checked by the job, so a host without room
 * fails the job with a placement-style message); a created or shut down VM just gets new boot
 * sizes (200 + the VM, applied at its next start). `POST /v1/vms/{id}/disks/{device_id}/resize`
 * grows a disk by a `disk_resize` job. The rules are in domain/resize.ts; the steps in
 * jobs/resize_steps.ts. Obvious mistakes are refused at once (422 naming the field, 409 naming
 * the status or the active job).
 */
import { createRoute, OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import { ConflictError, InvalidArgumentError, NotFoundError } from "../../shared/errors/errors.ts";
import { activeJobFor } from "../db/jobs.ts";
import { transaction } from "../db/query.ts";
import { storageObjects } from "../db/storage_objects.ts";
import { getDisk } from "../db/vm_disks.ts";
import { vms } from "../db/vms.ts";
import { checkDiskGrowth, resizedSizing } from "../domain/resize.ts";
import { assertVmAction } from "../domain/vm_status.ts";
import type { DiskResizeParams, VmResizeParams } from "../jobs/resize_steps.ts";
import { body, errors, Id, json, validationHook, withEtag } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { acceptJob, IdempotencyHeaders, Job } from "./jobs.ts";
import { updateVm, Vm } from "./vms.ts";

const tags = ["vms"];
const Size = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

const VmResizeRequest = z.strictObject({
  desired_vcpus: z.int().min(1).max(512).optional().openapi({
    description: "vCPUs, from 1 to the VM's max_vcpus",
  }),
  desired_ram: Size.optional().openapi({
    description: "Memory in bytes: at least 128 MiB, whole MiB; a running VM's memory only " +
      "grows, by multiples of 128 MiB, up to memory_size + memory_hotplug_size",
  }),
}).refine((r) => r.desired_vcpus !== undefined || r.desired_ram !== undefined, {
  message: "give desired_vcpus or desired_ram",
  path: ["desired_vcpus"],
}).openapi("VmResizeRequest");

const DiskResizeRequest = z.strictObject({
  size_bytes: Size.openapi({ description: "The new size: larger than now, whole MiB" }),
}).openapi("DiskResizeRequest");

const VmParams = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });
const DiskParams = VmParams.extend({
  device_id: z.string().max(64).openapi({ param: { name: "device_id", in: "path" } }),
});

/** The resize routes. */
export function vmResizeRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  for (const method of ["post", "put"] as const) {
    const upstream = method === "put" ? " (upstream-compatible PUT)" : "";
    app.openapi(
      createRoute({
        method,
        path: "/vms/{id}/resize",
        tags,
        summary: `Resize a VM's vCPUs and/or memory${upstream}`,
        description: "A running VM: 202 + a `vm_resize` job that checks its host's capacity " +
          "(overcommit ratios, with the other VMs there), hotplugs the vCPUs/memory through its " +
          "node and records `boot_vcpus`/`memory_size` (the ceiling memory_size + " +
          "memory_hotplug_size is kept: memory_hotplug_size shrinks by what was plugged). A " +
          "created or shut down VM: 200 + the VM with its new boot sizes (applied at the next " +
          "start). Other statuses: 409.",
        request: { params: VmParams, headers: IdempotencyHeaders, body: body(VmResizeRequest) },
        responses: {
          200: json(Vm, "The stopped VM with its new sizes", true),
          202: json(Job, "The queued job (running VM)", true),
          ...errors(400, 404, 409, 422),
        } as RouteConfig["responses"],
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const req = c.req.valid("json") as VmResizeParams;
        const vm = await vms.get(deps.sql, id);
        if (!vm) throw NotFoundError.of("vm", id);
        assertVmAction(vm, "resize");
        if (vm.status !== "running") {
          const row = await transaction(deps.sql, async (tx) => {
            const cur = await vms.get(tx, id, true);
            if (!cur) throw NotFoundError.of("vm", id);
            const job = await activeJobFor(tx, "vm", id);
            if (job) {
              throw new ConflictError(
                `vm ${id} has an active job ${job.id} (${job.type}, ${job.status})`,
              );
            }
            assertVmAction(cur, "update_sizing");
            const { boot_vcpus, memory_size } = resizedSizing(cur, req, false);
            return await updateVm(
              tx,
              c,
              deps,
              id,
              { boot_vcpus, memory_size },
              undefined,
              "resize",
            );
          });
          return c.json(withEtag(c, row), 200) as never;
        }
        return await acceptJob(c, deps, {
          type: "vm_resize",
          resource_type: "vm",
          resource_id: id,
          params: { ...req },
          action: "resize",
          async check(tx) {
            const cur = await vms.get(tx, id, true);
            if (!cur) throw NotFoundError.of("vm", id);
            assertVmAction(cur, "resize");
            if (cur.status !== "running") assertVmAction(cur, "update_sizing");
            // The rules now (422 at once); capacity is the job's, with the host locked.
            resizedSizing(cur, req, true);
            return { summary: { name: cur.name, status: cur.status, ...req } };
          },
        }) as never;
      },
    );

    app.openapi(
      createRoute({
        method,
        path: "/vms/{id}/disks/{device_id}/resize",
        tags,
        summary: `Grow a VM's disk${upstream}`,
        description: "202 + a `disk_resize` job: the node grows the file (through the VMM, so " +
          "the guest sees it, when the VM runs or is paused; qcow2 disks only while it is " +
          "stopped) and the storage object records the size. Grow only, whole MiB (422).",
        request: { params: DiskParams, headers: IdempotencyHeaders, body: body(DiskResizeRequest) },
        responses: { 202: json(Job, "The queued job", true), ...errors(400, 404, 409, 422) },
      }),
      async (c) => {
        const { id, device_id } = c.req.valid("param");
        const { size_bytes } = c.req.valid("json");
        return await acceptJob(c, deps, {
          type: "disk_resize",
          resource_type: "vm",
          resource_id: id,
          action: "resize_disk",
          async check(tx) {
            const vm = await vms.get(tx, id, true);
            if (!vm) throw NotFoundError.of("vm", id);
            const disk = await getDisk(tx, id, device_id);
            if (!disk) throw NotFoundError.of("disk", `${device_id} of vm ${id}`);
            assertVmAction(vm, "resize_disk");
            const object = await storageObjects.get(tx, disk.storage_object_id, true);
            if (!object) throw NotFoundError.of("storage object", disk.storage_object_id);
            if (object.type !== "disk" || disk.read_only) {
              throw InvalidArgumentError.field(
                "device_id",
                `${device_id} is a ${disk.read_only ? "read-only " : ""}${object.type}; only ` +
                  "writable disks can grow",
              );
            }
            if (object.status !== "ready") {
              throw InvalidArgumentError.field("device_id", `${object.name} is ${object.status}`);
            }
            const live = vm.status === "running" || vm.status === "paused";
            if (live && object.format === "qcow2") {
              throw InvalidArgumentError.field(
                "device_id",
                `${device_id} is qcow2: it can only grow while the vm is stopped`,
              );
            }
            checkDiskGrowth(object.size_bytes, size_bytes);
            const params: DiskResizeParams = {
              device_id,
              storage_object_id: object.id,
              size_bytes,
            };
            return {
              summary: { name: vm.name, device_id, from: object.size_bytes, size_bytes },
              params: { ...params },
            };
          },
        }) as never;
      },
    );
  }

  return app;
}
