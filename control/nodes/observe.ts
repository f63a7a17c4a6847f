/**
 * Applying what nodes report to the VMs' statuses: one event from a node's WatchEvents stream
 * (`applyNodeEvent`), or a whole host compared with its `ListVms` answer (`reconcileHost`, the
 * backstop when a stream broke). Both change statuses only through `changeVmStatus`, so each
 * change is recorded with `source: "node"`.
 */
import { node } from "../../shared/proto/mod.ts";
import type { HostRow } from "../db/hosts.ts";
import { run } from "../db/query.ts";
import { vms } from "../db/vms.ts";
import { type KnownVm, observable, observedStatus, reconcile } from "../domain/observation.ts";
import { VM_STATUSES } from "../domain/vm_status.ts";
import { type Cause, changeVmStatus } from "../events/status.ts";
import type { Services } from "../services.ts";

const CAUSE: Cause = { source: "node" };
const OBSERVABLE = VM_STATUSES.filter(observable);

/** Applies one VmEvent of `host`'s stream; true when a status changed. */
export async function applyNodeEvent(
  svc: Services,
  host: HostRow,
  event: node.VmEvent.$Properties,
): Promise<boolean> {
  const status = event.status ?? node.VmStatus.VM_STATUS_UNKNOWN;
  // Status changes and VMM exits say what the VM is now (a VMM event that changes it is
  // followed by a state change); an event without a status says nothing.
  const kind = event.kind ?? node.VmEventKind.VM_EVENT_KIND_UNSPECIFIED;
  if (
    status === node.VmStatus.VM_STATUS_UNKNOWN ||
    (kind !== node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED &&
      kind !== node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT)
  ) return false;
  const vmId = event.vmId ?? "";
  const vm = await vms.get(svc.sql, vmId);
  if (!vm || vm.host_id !== host.id || !observable(vm.status)) return false;
  const o = observedStatus(status, event.message ?? "");
  if (o.status === vm.status && o.reason === vm.status_reason) return false;
  const r = await svc.events.transaction((tx, emit) =>
    changeVmStatus(tx, emit, vmId, o, CAUSE, { onlyFrom: OBSERVABLE })
  );
  return r.changed;
}

/** Outcome of reconciling one host. */
export interface ReconcileReport {
  host_id: string;
  checked: number;
  changed: number;
  /** VMs the node runs that the database does not have on this host. */
  strays: string[];
}

/** Compares a host's VMs with its node's `ListVms` and applies the differences. */
export async function reconcileHost(
  svc: Services,
  host: HostRow,
  signal?: AbortSignal,
): Promise<ReconcileReport> {
  const known = await run(() =>
    svc.sql<KnownVm[]>`
      select v.id, v.status, v.status_reason, v.version,
             exists(select 1 from jobs j where j.resource_type = 'vm' and j.resource_id = v.id
                    and j.status in ('pending', 'running')) as busy
      from vms v where v.host_id = ${host.id} and v.status <> 'created'`
  );
  const client = svc.nodes.get(host);
  const list = await client.call("ListVms", (o, n) => n.vm.listVms({}, o), { signal });
  const listed = list.vms.map((s) => ({
    id: s.config?.vmId ?? "",
    status: s.status,
    reason: s.reason ?? "",
  }));
  const { changes, unknownToDb } = reconcile(known, listed, host.name);
  let changed = 0;
  for (const c of changes) {
    const r = await svc.events.transaction((tx, emit) =>
      changeVmStatus(tx, emit, c.vm_id, { status: c.status, reason: c.reason }, CAUSE, {
        ifVersion: c.version,
      })
    );
    if (r.changed) changed++;
  }
  if (unknownToDb.length) {
    svc.logger.warn("node runs VMs this host has no record of", {
      host_id: host.id,
      vm_ids: unknownToDb.slice(0, 20),
    });
  }
  return { host_id: host.id, checked: known.length, changed, strays: unknownToDb };
}
