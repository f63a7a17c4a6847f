/**
 * The steps of the VM job plans. Each is small and idempotent: it looks at the VM (database
 * and node) before acting, so running it again after a crash or a retry is safe. Status
 * changes go through `changeVmStatus` in a lease-checked transaction.
 */
import {
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import { placementHosts, vmLocalObjects } from "../db/placement.ts";
import { networksOfVm } from "../db/network_interfaces.ts";
import { bootSourceFiles, vmDiskFiles, vmNicNetworks } from "../db/vm_resources.ts";
import { type VmRow, vms } from "../db/vms.ts";
import { buildVmConfig, resolveBoot } from "../domain/node_spec.ts";
import { place, type PlacementVm } from "../domain/placement.ts";
import { assertVmAction, type VmAction, type VmStatus } from "../domain/vm_status.ts";
import { changeVmStatus } from "../events/status.ts";
import { applyNetwork, applyPool, syncReservations } from "../nodes/attachments.ts";
import type { NodeClient } from "../nodes/client.ts";
import { JobCancelledError, type JobContext, type Step } from "./plan.ts";

const S = node.VmStatus;

// ---- helpers ------------------------------------------------------------------------------

/** The job's VM (fresh), or NotFound. */
export async function loadVm(ctx: JobContext): Promise<VmRow> {
  const vm = await vms.get(ctx.svc.sql, ctx.job.resource_id ?? "");
  if (!vm) throw NotFoundError.of("vm", ctx.job.resource_id ?? "");
  return vm;
}

/** The VM, its host and that host's node client. */
export async function vmOnNode(
  ctx: JobContext,
): Promise<{ vm: VmRow; host: HostRow; client: NodeClient }> {
  const vm = await loadVm(ctx);
  const hostId = vm.host_id ?? (ctx.data.host_id as string | undefined);
  if (!hostId) throw new FailedPreconditionError(`vm ${vm.name} is not placed on any host`);
  const host = await getHost(ctx.svc.sql, hostId);
  if (!host) throw new FailedPreconditionError(`host ${hostId} of vm ${vm.name} no longer exists`);
  return { vm, host, client: ctx.svc.nodes.get(host) };
}

/** The node's view of a VM: its state, or null when the node does not know it. */
export async function nodeVmState(
  ctx: JobContext,
  client: NodeClient,
  vmId: string,
): Promise<node.VmState | null> {
  try {
    return await client.call("GetVmInfo", (o, n) => n.vm.getVmInfo({ id: vmId }, o), {
      signal: ctx.signal,
    });
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/** Polls the node until the VM is in one of `want` (or `fail` says it never will). */
async function awaitNodeStatus(
  ctx: JobContext,
  client: NodeClient,
  vm: VmRow,
  want: node.VmStatus[],
  timeoutMs: number,
  fail: (s: node.VmState | null) => string | null = () => null,
): Promise<node.VmState | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await nodeVmState(ctx, client, vm.id);
    const status = s?.status ?? S.VM_STATUS_UNKNOWN;
    if (want.includes(status) || (s === null && want.includes(S.VM_STATUS_UNKNOWN))) return s;
    const why = fail(s);
    if (why) throw new FailedPreconditionError(why);
    if (Date.now() > deadline) {
      throw new DeadlineExceededError(
        `vm ${vm.name} is ${S[status] ?? status} on its node after ${timeoutMs} ms, expected ` +
          want.map((w) => S[w]).join(" or "),
      );
    }
    await new Promise((r) => setTimeout(r, 100));
    ctx.waitSignal.throwIfAborted();
  }
}

/** Sets the VM's status in a lease-checked transaction. */
async function setStatus(
  ctx: JobContext,
  status: VmStatus,
  reason: string | null,
  extra: { host_id?: string | null; onlyFrom?: VmStatus[] } = {},
) {
  await ctx.transaction((tx, emit) =>
    changeVmStatus(
      tx,
      emit,
      ctx.job.resource_id!,
      { status, reason, ...(extra.host_id === undefined ? {} : { host_id: extra.host_id }) },
      ctx.cause,
      extra.onlyFrom ? { onlyFrom: extra.onlyFrom } : {},
    )
  );
}

/** The networks and pools a VM needs on its host. */
export async function vmNeeds(
  ctx: JobContext,
  vm: VmRow,
): Promise<{ networks: string[]; pools: string[] }> {
  const db = ctx.svc.sql;
  const nics = await vmNicNetworks(db, vm.id, null);
  const disks = await vmDiskFiles(db, vm.id);
  const boot = vm.boot_source_id ? await bootSourceFiles(db, vm.boot_source_id) : undefined;
  return {
    networks: [...new Set(nics.map((n) => n.network_id))],
    pools: [...new Set([...disks.map((d) => d.pool_id), ...(boot?.pools ?? [])])],
  };
}

/** The CreateVM request for a VM on `host`. */
export async function vmSpec(ctx: JobContext, vm: VmRow, host: HostRow) {
  const db = ctx.svc.sql;
  const disks = await vmDiskFiles(db, vm.id);
  const nics = await vmNicNetworks(db, vm.id, host.id);
  for (const n of nics) {
    if (!n.bridge) {
      throw new FailedPreconditionError(
        `network ${n.network_name} of vm ${vm.name} (${n.device_id}) is not attached to host ` +
          `${host.name}`,
      );
    }
  }
  const boot = vm.boot_source_id ? await bootSourceFiles(db, vm.boot_source_id) : undefined;
  if (vm.boot_source_id && !boot) {
    throw new FailedPreconditionError(`boot source ${vm.boot_source_id} no longer exists`);
  }
  const payload = resolveBoot(vm, boot?.source ?? null, ctx.svc.config.vm_defaults);
  return buildVmConfig(vm, payload, disks, nics.map((n) => ({ ...n, bridge: n.bridge! })));
}

/** Validates the action on the VM the first time; a resumed job skips it (`data.from`). */
function checkStep(action: VmAction, extra?: (ctx: JobContext, vm: VmRow) => Promise<void>): Step {
  return {
    name: "check",
    async run(ctx) {
      if (ctx.data.from !== undefined) return;
      const vm = await loadVm(ctx);
      assertVmAction(vm, action);
      await extra?.(ctx, vm);
      ctx.data.from = vm.status;
      ctx.data.host_id = vm.host_id;
      ctx.data.had_host = vm.host_id !== null;
    },
  };
}

// ---- start --------------------------------------------------------------------------------

/** Start: the VM may start (and its disks are ready). */
export const startCheck: Step = checkStep("start", async (_ctx, vm) => {
  const disks = await vmDiskFiles(_ctx.svc.sql, vm.id);
  const notReady = disks.filter((d) => d.object_status !== "ready");
  if (notReady.length) {
    throw new FailedPreconditionError(
      `vm ${vm.name} cannot start: disk ${
        notReady.map((d) => `${d.device_id} (${d.object_name}) is ${d.object_status}`).join(", ")
      }`,
    );
  }
});

/**
 * Start: choose a host if the VM has none (its own host otherwise, which must still fit it),
 * in the transaction that marks it `pending` there, with the candidate hosts locked.
 */
export const placeStep: Step = {
  name: "place",
  async run(ctx) {
    const vm = await loadVm(ctx);
    const needs = await vmNeeds(ctx, vm);
    const placement = vm.placement;
    const tags = [
      ...placement.affinity_tags,
      ...placement.anti_affinity_tags,
      ...placement.spread_tags,
    ];
    const { scheduling } = ctx.svc.config;
    const chosen = await ctx.transaction(async (tx, emit) => {
      const current = await vms.get(tx, vm.id, true);
      if (!current) throw NotFoundError.of("vm", vm.id);
      if (current.status === "pending" && current.host_id) return current.host_id; // resumed
      const hosts = await placementHosts(tx, {
        vmId: vm.id,
        hostId: current.host_id,
        networks: needs.networks,
        pools: needs.pools,
        tags: [...new Set(tags)],
      });
      const request: PlacementVm = {
        ...current,
        ...needs,
        local_objects: await vmLocalObjects(tx, vm.id, current.boot_source_id),
      };
      const result = place(request, hosts, scheduling);
      if (!result.ok) {
        throw new FailedPreconditionError(result.message, {
          details: result.rejections.map((r) => ({
            field: r.filter,
            message: `${r.host}: ${r.reason}`,
            host_id: r.host_id,
          })),
        });
      }
      await changeVmStatus(
        tx,
        emit,
        vm.id,
        { status: "pending", reason: null, host_id: result.host.id },
        ctx.cause,
      );
      return result.host.id;
    });
    ctx.data.host_id = chosen;
  },
};

/** Start: the networks the VM's NICs use are attached (bridges exist) on its host. */
export const ensureNetworksStep: Step = {
  name: "ensure_networks",
  async run(ctx) {
    const { vm, host } = await vmOnNode(ctx);
    const { networks } = await vmNeeds(ctx, vm);
    for (const id of networks) await applyNetwork(ctx.svc, host, id, ctx.signal);
  },
};

/** Start: the pools of the VM's disks and boot files are attached on its host. */
export const ensurePoolsStep: Step = {
  name: "ensure_pools",
  async run(ctx) {
    const { vm, host } = await vmOnNode(ctx);
    const { pools } = await vmNeeds(ctx, vm);
    for (const id of pools) await applyPool(ctx.svc, host, id, ctx.signal);
  },
};

/**
 * Start: the node has the VM with its current spec (CreateVM is idempotent for the same spec;
 * a stopped VM whose spec changed is deleted there and created again).
 */
export const createOnNodeStep: Step = {
  name: "create_on_node",
  async run(ctx) {
    const { vm, host, client } = await vmOnNode(ctx);
    const spec = await vmSpec(ctx, vm, host);
    ctx.data.created_on_node = true;
    await ctx.save();
    const create = () =>
      client.call("CreateVM", (o, n) => n.vm.createVM(spec, o), { signal: ctx.signal });
    try {
      await create();
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      const state = await nodeVmState(ctx, client, vm.id);
      if (state?.status === S.VM_STATUS_RUNNING || state?.status === S.VM_STATUS_PAUSED) return;
      await client.call("DeleteVM", (o, n) => n.vm.deleteVM({ id: vm.id }, o), {
        signal: ctx.signal,
      });
      await create();
    }
  },
};

/** Start: the VM is booted on its node (nothing to do when it already runs). */
export const bootStep: Step = {
  name: "boot",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    const state = await nodeVmState(ctx, client, vm.id);
    if (state?.status === S.VM_STATUS_RUNNING) return;
    if (state?.status === S.VM_STATUS_PAUSED) {
      await client.call("ResumeVM", (o, n) => n.vm.resumeVM({ id: vm.id }, o), {
        signal: ctx.signal,
      });
      return;
    }
    await client.call("StartVM", (o, n) => n.vm.startVM({ id: vm.id }, o), {
      signal: ctx.signal,
      timeoutMs: ctx.svc.config.nodes.start_timeout_ms,
    });
  },
};

/** Start: the node reports the VM running; so does the VM's status. */
export const confirmRunningStep: Step = {
  name: "confirm_running",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    await awaitNodeStatus(
      ctx,
      client,
      vm,
      [S.VM_STATUS_RUNNING],
      ctx.svc.config.nodes.start_timeout_ms,
      (s) =>
        s === null
          ? `vm ${vm.name} disappeared from its node while starting`
          : s.status === S.VM_STATUS_CRASHED || s.status === S.VM_STATUS_SHUTDOWN
          ? `vm ${vm.name} stopped right after booting${s.reason ? `: ${s.reason}` : ""}`
          : null,
    );
    await setStatus(ctx, "running", null);
  },
};

/**
 * After a failed or cancelled start: a VM this job created on the node is removed again if it
 * had never run, and the VM goes back to the status it had (a never-provisioned VM also loses the host
 * it was given), with the error as its reason.
 */
export async function undoStart(ctx: JobContext, error: Error): Promise<void> {
  const from = ctx.data.from as VmStatus | undefined;
  if (from === undefined) return;
  const vm = await vms.get(ctx.svc.sql, ctx.job.resource_id ?? "");
  if (!vm || vm.status !== "pending") return;
  const hostId = vm.host_id;
  if (hostId && ctx.data.created_on_node) {
    const host = await getHost(ctx.svc.sql, hostId);
    if (host) {
      const client = ctx.svc.nodes.get(host);
      const id = { id: vm.id };
      // A fresh VM is removed from the node; a stopped one is left stopped.
      const undo = from === "created"
        ? client.call("DeleteVM", (o, n) => n.vm.deleteVM(id, o))
        : client.call("ForceStopVM", (o, n) => n.vm.forceStopVM(id, o));
      await undo.catch((err) => ctx.log.warn("cleanup after failed start", { err }));
    }
  }
  const keepHost = from !== "created" || Boolean(ctx.data.had_host);
  const reason = error instanceof JobCancelledError
    ? `start ${error.message}`
    : `start failed: ${error.message}`;
  await setStatus(ctx, from, reason, {
    onlyFrom: ["pending"],
    ...(keepHost ? {} : { host_id: null }),
  });
}

// ---- stop, force stop, pause, resume, reboot ----------------------------------------------

/** Stop/force-stop: the action is allowed (an already stopped VM is done). */
export function stopCheck(action: "stop" | "force_stop"): Step {
  return {
    name: "check",
    async run(ctx) {
      if (ctx.data.from !== undefined) return;
      const vm = await loadVm(ctx);
      if (vm.status !== "shutdown") assertVmAction(vm, action);
      ctx.data.from = vm.status;
    },
  };
}

/** Stop: graceful (ACPI, wait `timeout_ms`, then the node stops it hard) or force. */
export function stopOnNodeStep(force: boolean): Step {
  return {
    name: force ? "force_stop_on_node" : "stop_on_node",
    async run(ctx) {
      const { vm, client } = await vmOnNode(ctx);
      const state = await nodeVmState(ctx, client, vm.id);
      if (state === null) return;
      if (state.status !== S.VM_STATUS_RUNNING && state.status !== S.VM_STATUS_PAUSED) return;
      if (force) {
        await client.call("ForceStopVM", (o, n) => n.vm.forceStopVM({ id: vm.id }, o), {
          signal: ctx.signal,
        });
        return;
      }
      const timeoutMs = Number(ctx.job.params.timeout_ms ?? ctx.svc.config.nodes.stop_timeout_ms);
      await client.call(
        "StopVM",
        (o, n) => n.vm.stopVM({ id: vm.id, timeoutMs }, o),
        { signal: ctx.signal, timeoutMs: timeoutMs + ctx.svc.config.nodes.call_timeout_ms },
      );
    },
  };
}

/** Stop: the node no longer runs the VM; its status is `shutdown`. */
export const confirmStoppedStep: Step = {
  name: "confirm_stopped",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    await awaitNodeStatus(
      ctx,
      client,
      vm,
      [S.VM_STATUS_SHUTDOWN, S.VM_STATUS_CREATED, S.VM_STATUS_CRASHED, S.VM_STATUS_UNKNOWN],
      ctx.svc.config.nodes.call_timeout_ms,
    );
    await setStatus(ctx, "shutdown", null);
  },
};

/** A one-call action (pause, resume, reboot) that the node reports as done in `after`. */
export function nodeActionSteps(
  action: "pause" | "resume" | "reboot",
): Step[] {
  const call = { pause: "PauseVM", resume: "ResumeVM", reboot: "RebootVM" } as const;
  const after = action === "pause" ? S.VM_STATUS_PAUSED : S.VM_STATUS_RUNNING;
  return [
    checkStep(action),
    {
      name: `${action}_on_node`,
      async run(ctx) {
        const { vm, client } = await vmOnNode(ctx);
        const state = await nodeVmState(ctx, client, vm.id);
        if (state === null) {
          throw new FailedPreconditionError(`vm ${vm.name} is not on its node any more`);
        }
        // Pause and resume are done once the node is there; a reboot always reboots.
        if (action !== "reboot" && state.status === after) return;
        const id = { id: vm.id };
        await client.call(call[action], (o, n) => n.vm[`${action}VM`](id, o), {
          signal: ctx.signal,
        });
      },
    },
    {
      name: "confirm",
      async run(ctx) {
        const { vm, client } = await vmOnNode(ctx);
        await awaitNodeStatus(ctx, client, vm, [after], ctx.svc.config.nodes.call_timeout_ms);
        await setStatus(ctx, action === "pause" ? "paused" : "running", null);
      },
    },
  ];
}

// ---- delete -------------------------------------------------------------------------------

/** Delete: the VM may go (a VM already gone is done). */
export const deleteCheck: Step = {
  name: "check",
  async run(ctx) {
    if (ctx.data.from !== undefined) return;
    const vm = await vms.get(ctx.svc.sql, ctx.job.resource_id ?? "");
    if (!vm) {
      ctx.data.gone = true;
      ctx.data.from = "deleted";
      return;
    }
    assertVmAction(vm, "delete");
    ctx.data.from = vm.status;
    ctx.data.host_id = vm.host_id;
    ctx.data.name = vm.name;
    // DHCP networks hand out the VM's addresses by reservation: updated once it is gone.
    ctx.data.networks = await networksOfVm(ctx.svc.sql, vm.id);
  },
};

/**
 * Delete: the VM is stopped and removed on its node (DeleteVM is idempotent). With
 * `force`, an unreachable node does not block the deletion (its VMM may be left behind).
 */
export const deleteOnNodeStep: Step = {
  name: "delete_on_node",
  async run(ctx) {
    if (ctx.data.gone || !ctx.data.host_id) return;
    const host = await getHost(ctx.svc.sql, ctx.data.host_id as string);
    if (!host) return;
    const client = ctx.svc.nodes.get(host);
    const id = { id: ctx.job.resource_id! };
    try {
      const state = await nodeVmState(ctx, client, id.id);
      if (state === null) return;
      if (state.status === S.VM_STATUS_RUNNING || state.status === S.VM_STATUS_PAUSED) {
        await client.call("ForceStopVM", (o, n) => n.vm.forceStopVM(id, o), {
          signal: ctx.signal,
        });
      }
      await client.call("DeleteVM", (o, n) => n.vm.deleteVM(id, o), { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (!ctx.job.params.force) {
        if (err instanceof UnavailableError || err instanceof DeadlineExceededError) {
          throw new UnavailableError(
            `${err.message} (the VM is kept until its node answers; DELETE with force=true ` +
              "removes it without the node)",
            { cause: err },
          );
        }
        throw err;
      }
      ctx.data.node_error = (err as Error).message;
      ctx.log.warn("deleting without the node (force)", { err });
    }
  },
};

/**
 * Delete: the DHCP servers of its networks, on every host they are attached to, forget its
 * reservations (a host that misses this gets the current set when it is next applied).
 */
export const releaseReservationsStep: Step = {
  name: "release_reservations",
  async run(ctx) {
    const networks = (ctx.data.networks as string[] | undefined) ?? [];
    if (ctx.data.gone || networks.length === 0) return;
    await syncReservations(ctx.svc, networks, ctx.signal);
  },
};

/** Delete: the VM row goes (its NICs, addresses and disk attachments with it). */
export const removeRecordStep: Step = {
  name: "remove_record",
  async run(ctx) {
    if (ctx.data.gone) return;
    await ctx.transaction(async (tx, emit) => {
      const vm = await vms.get(tx, ctx.job.resource_id!, true);
      if (!vm) return;
      await vms.remove(tx, vm.id);
      emit({
        type: "vm.deleted",
        resource_type: "vm",
        resource_id: vm.id,
        data: {
          vm_id: vm.id,
          name: vm.name,
          previous_status: vm.status,
          host_id: vm.host_id,
          tags: vm.tags,
          ...ctx.cause,
        },
      });
    });
  },
};
