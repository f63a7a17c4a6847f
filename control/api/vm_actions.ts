/**
 * VM lifecycle through the API: `POST /v1/vms/{id}/start | stop | force-stop | pause | resume
 * | reboot` and `DELETE /v1/vms/{id}`, each answered `202` with the job that does it
 * (`Location: /v1/jobs/{id}`; poll it with `?wait=`). An action the VM's status does not allow
 * is refused at once (409 naming the status), as is a second action while one is active (409
 * naming the active job). `Idempotency-Key` makes retries return the first job.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../shared/errors/errors.ts";
import type { JobType } from "../db/jobs.ts";
import { vms } from "../db/vms.ts";
import { assertVmAction, type VmAction } from "../domain/vm_status.ts";
import { checkIfMatch, errors, IdParams, IfMatchHeaders, json, validationHook } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { acceptJob, IdempotencyHeaders, Job } from "./jobs.ts";

const tags = ["vms"];

interface ActionSpec {
  path: string;
  action: VmAction;
  type: JobType;
  summary: string;
  description: string;
  query?: z.ZodObject;
}

const StopQuery = z.object({
  timeout: z.coerce.number().int().min(0).max(3600).optional().openapi({
    description: "Seconds to wait for the guest to power off before stopping it hard " +
      "(default `nodes.stop_timeout_ms`)",
  }),
});

const DeleteQuery = z.object({
  force: z.enum(["true", "false"]).optional().openapi({
    description: "Delete the record even when the VM's node cannot be reached (its VMM may " +
      "be left running there)",
  }),
});

const ACTIONS: ActionSpec[] = [
  {
    path: "start",
    action: "start",
    type: "vm_start",
    summary: "Start a VM",
    description: "Places the VM if it has no host, makes sure its networks and storage pools " +
      "are attached there, sends its spec to the node and boots it; the job succeeds once the " +
      "node reports it running. Allowed when created or shut down.",
  },
  {
    path: "stop",
    action: "stop",
    type: "vm_stop",
    summary: "Stop a VM (graceful, then hard)",
    description: "Presses the ACPI power button, waits `timeout` seconds for the guest to " +
      "power off, then stops it hard. Allowed when running or paused.",
    query: StopQuery,
  },
  {
    path: "force-stop",
    action: "force_stop",
    type: "vm_force_stop",
    summary: "Stop a VM at once",
    description: "Stops the VM without asking the guest. Allowed when running, paused or unknown.",
  },
  {
    path: "pause",
    action: "pause",
    type: "vm_pause",
    summary: "Pause a running VM",
    description: "Allowed when running.",
  },
  {
    path: "resume",
    action: "resume",
    type: "vm_resume",
    summary: "Resume a paused VM",
    description: "Allowed when paused.",
  },
  {
    path: "reboot",
    action: "reboot",
    type: "vm_reboot",
    summary: "Reboot a running VM",
    description: "Allowed when running.",
  },
];

/** The VM lifecycle routes. */
export function vmActionsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  for (const spec of ACTIONS) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/vms/{id}/${spec.path}`,
        tags,
        summary: spec.summary,
        description: spec.description,
        request: {
          params: IdParams,
          headers: IdempotencyHeaders,
          ...(spec.query ? { query: spec.query } : {}),
        },
        responses: { 202: json(Job, "The queued job", true), ...errors(404, 409, 422) },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const params: Record<string, unknown> = {};
        if (spec.type === "vm_stop") {
          const { timeout } = StopQuery.parse(c.req.query());
          if (timeout !== undefined) params.timeout_ms = timeout * 1000;
        }
        return await acceptJob(c, deps, {
          type: spec.type,
          resource_type: "vm",
          resource_id: id,
          params,
          action: spec.action,
          async check(tx) {
            const vm = await vms.get(tx, id, true);
            if (!vm) throw NotFoundError.of("vm", id);
            assertVmAction(vm, spec.action);
            return { summary: { name: vm.name, status: vm.status } };
          },
        }) as never;
      },
    );
  }

  app.openapi(
    createRoute({
      method: "delete",
      path: "/vms/{id}",
      tags,
      summary: "Delete a VM",
      description: "Stops the VM and removes it from its node, then deletes it (its NICs' " +
        "addresses are released). Not while it is being started or moved (409).",
      request: {
        params: IdParams,
        headers: IfMatchHeaders.extend(IdempotencyHeaders.shape),
        query: DeleteQuery,
      },
      responses: { 202: json(Job, "The queued job", true), ...errors(404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { force } = c.req.valid("query");
      return await acceptJob(c, deps, {
        type: "vm_delete",
        resource_type: "vm",
        resource_id: id,
        params: force === "true" ? { force: true } : {},
        action: "delete",
        async check(tx) {
          const vm = await vms.get(tx, id, true);
          if (!vm) throw NotFoundError.of("vm", id);
          checkIfMatch(c, vm.version, `vm ${id}`);
          assertVmAction(vm, "delete");
          return { summary: { name: vm.name, status: vm.status } };
        },
      }) as never;
    },
  );

  return app;
}
