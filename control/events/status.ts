/**
 * The one way a VM's or a host's status changes: lock the row, check the change is still
 * wanted, update it and record the event, in the caller's transaction. Jobs and node
 * observations (event streams, reconciliation, health probes) all come through here, so every
 * status change the API shows is in the event log with what caused it.
 */
import type { Db } from "../db/query.ts";
import { run } from "../db/query.ts";
import { getHost, type HostRow, type HostStatus, updateHost } from "../db/hosts.ts";
import { type VmRow, vms } from "../db/vms.ts";
import type { VmStatus } from "../domain/vm_status.ts";
import type { Emit } from "./bus.ts";

/** What caused a change: a job, an observation of a node, or a monitor's conclusion. */
export interface Cause {
  source: "job" | "node" | "monitor" | "api";
  job_id?: string;
}

/** A VM status change. */
export interface VmChange {
  status: VmStatus;
  /** Why (shown as `status_reason`); null clears it. */
  reason?: string | null;
  /** Also move the VM to this host (placement) or off any host (null). */
  host_id?: string | null;
}

/** Outcome of a change attempt. */
export interface Changed<T> {
  /** The row after the call (undefined when it does not exist). */
  row: T | undefined;
  /** True when the status itself changed (an event was recorded). */
  changed: boolean;
  previous?: string;
}

/** Conditions a change is applied under. */
export interface VmChangeGuard {
  /** Only while the VM is in one of these statuses. */
  onlyFrom?: readonly VmStatus[];
  /** Only if the row is still at this version (nothing changed it since it was read). */
  ifVersion?: number;
}

/**
 * Changes a VM's status (and reason / host) unless it is gone or the guard no longer holds.
 * Records `vm.status_changed` when the status changes.
 */
export async function changeVmStatus(
  tx: Db,
  emit: Emit,
  vmId: string,
  change: VmChange,
  cause: Cause,
  guard: VmChangeGuard | readonly VmStatus[] = {},
): Promise<Changed<VmRow>> {
  const g: VmChangeGuard = Array.isArray(guard) ? { onlyFrom: guard } : guard as VmChangeGuard;
  const vm = await vms.get(tx, vmId, true);
  if (!vm) return { row: undefined, changed: false };
  if (g.onlyFrom && !g.onlyFrom.includes(vm.status)) {
    return { row: vm, changed: false, previous: vm.status };
  }
  if (g.ifVersion !== undefined && vm.version !== g.ifVersion) {
    return { row: vm, changed: false, previous: vm.status };
  }
  const fields: Partial<VmRow> = {};
  if (vm.status !== change.status) fields.status = change.status;
  const reason = change.reason === undefined ? vm.status_reason : change.reason;
  if (reason !== vm.status_reason) fields.status_reason = reason;
  if (change.host_id !== undefined && change.host_id !== vm.host_id) {
    fields.host_id = change.host_id;
  }
  if (Object.keys(fields).length === 0) return { row: vm, changed: false, previous: vm.status };
  const row = await vms.update(tx, vmId, fields);
  const changed = fields.status !== undefined;
  if (changed) {
    emit({
      type: "vm.status_changed",
      resource_type: "vm",
      resource_id: vmId,
      data: {
        vm_id: vmId,
        name: vm.name,
        previous_status: vm.status,
        status: change.status,
        reason,
        host_id: row?.host_id ?? null,
        tags: vm.tags,
        ...cause,
      },
    });
  }
  return { row, changed, previous: vm.status };
}

/**
 * Changes a host's status unless, with `onlyFrom`, it is no longer in one of those statuses;
 * `facts` are other columns to set in the same update (capacity, versions, last_seen_at).
 */
export async function changeHostStatus(
  tx: Db,
  emit: Emit,
  hostId: string,
  status: HostStatus | undefined,
  reason: string | null | undefined,
  cause: Cause,
  options: { onlyFrom?: readonly HostStatus[]; facts?: Partial<HostRow> } = {},
): Promise<Changed<HostRow>> {
  const host = await getHost(tx, hostId, true);
  if (!host) return { row: undefined, changed: false };
  if (options.onlyFrom && !options.onlyFrom.includes(host.status)) {
    return { row: host, changed: false, previous: host.status };
  }
  const fields: Partial<HostRow> = { ...options.facts };
  if (status !== undefined && status !== host.status) fields.status = status;
  if (reason !== undefined && reason !== host.status_reason) fields.status_reason = reason;
  if (Object.keys(fields).length === 0) return { row: host, changed: false, previous: host.status };
  const row = await updateHost(tx, hostId, fields);
  const changed = fields.status !== undefined;
  if (changed) {
    emit({
      type: "host.status_changed",
      resource_type: "host",
      resource_id: hostId,
      data: {
        host_id: hostId,
        name: host.name,
        previous_status: host.status,
        status,
        reason: reason === undefined ? host.status_reason : reason,
        ...cause,
      },
    });
  }
  return { row, changed, previous: host.status };
}

/** Ids of the VMs on a host in one of `statuses` (for host-wide changes). */
export async function vmIdsOnHost(
  db: Db,
  hostId: string,
  statuses: readonly VmStatus[],
): Promise<string[]> {
  const rows = await run(() =>
    db<{ id: string }[]>`
      select id from vms where host_id = ${hostId}
        and status = any(${db.array([...statuses])}::vm_status[])
      order by id`
  );
  return rows.map((r) => r.id);
}
