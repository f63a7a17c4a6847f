/**
 * Host lifecycle against its node: `initHost` (GetNodeInfo → capacity and versions stored,
 * status `up`, attachments re-applied; used by `POST /v1/hosts/{id}/init` and by the health
 * monitor when a `down` host answers again) and `hostUnreachable` (an `up` host goes `down`
 * and the VMs it ran become `unknown`). Every status change goes through events/status.ts.
 */
import {
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  type QaraxError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import type { node } from "../../shared/proto/mod.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import { type Cause, changeHostStatus, changeVmStatus, vmIdsOnHost } from "../events/status.ts";
import type { Services } from "../services.ts";
import { reapplyAttachments, type ReapplyReport } from "./attachments.ts";

/** Host columns filled from a node's GetNodeInfo. */
export function factsFromNodeInfo(info: node.NodeInfo.$Properties, now: Date): Partial<HostRow> {
  return {
    architecture: info.architecture || null,
    total_cpus: info.totalCpus || null,
    total_memory_bytes: Number(info.totalMemoryBytes) || null,
    available_memory_bytes: Number(info.availableMemoryBytes) || null,
    load_average: info.loadAverage_1m ?? null,
    cloud_hypervisor_version: info.cloudHypervisorVersion || null,
    kernel_version: info.kernelVersion || null,
    node_version: info.nodeVersion || null,
    cloud_hypervisor_emulated: info.cloudHypervisorEmulated ?? null,
    kvm_available: info.kvmAvailable ?? null,
    disk_total_bytes: Number(info.diskTotalBytes) || null,
    disk_available_bytes: Number(info.diskAvailableBytes) || null,
    last_seen_at: now,
  };
}

/** True for errors that mean "the node did not answer" (as opposed to "it said no"). */
export function isUnreachable(err: unknown): err is QaraxError {
  return err instanceof UnavailableError || err instanceof DeadlineExceededError;
}

/** Asks the node for its facts (one call with the configured deadline). */
export async function nodeInfo(
  svc: Services,
  host: HostRow,
  timeoutMs?: number,
): Promise<node.NodeInfo> {
  const client = svc.nodes.get(host);
  return await client.call("GetNodeInfo", (o, n) => n.vm.getNodeInfo({}, o), { timeoutMs });
}

/** Outcome of an init. */
export interface InitResult {
  host: HostRow;
  attachments: ReapplyReport;
}

/**
 * Connects to a host's node, stores its capacity and versions, marks it `up` (a host in
 * maintenance stays there) and re-applies its attachments. An unreachable node leaves the host
 * `down` (so the health monitor brings it up when it answers) and throws.
 */
export async function initHost(svc: Services, hostId: string, cause: Cause): Promise<InitResult> {
  const host = await getHost(svc.sql, hostId);
  if (!host) throw NotFoundError.of("host", hostId);
  let info: node.NodeInfo;
  try {
    info = await nodeInfo(svc, host);
  } catch (err) {
    if (isUnreachable(err)) {
      await svc.events.transaction((tx, emit) =>
        changeHostStatus(tx, emit, host.id, "down", `node unreachable: ${err.message}`, cause, {
          onlyFrom: ["unknown", "down", "up", "initializing"],
        })
      );
    }
    throw err;
  }
  if (host.architecture && info.architecture && host.architecture !== info.architecture) {
    throw new FailedPreconditionError(
      `host ${host.name} was registered as ${host.architecture} but its node reports ` +
        `${info.architecture}; fix the host's architecture`,
    );
  }
  await svc.events.transaction((tx, emit) =>
    changeHostStatus(
      tx,
      emit,
      host.id,
      host.status === "maintenance" ? undefined : "up",
      host.status === "maintenance" ? undefined : null,
      cause,
      { facts: factsFromNodeInfo(info, new Date()) },
    )
  );
  const attachments = await reapplyAttachments(svc, host);
  if (attachments.failed.length) {
    svc.logger.warn("some attachments could not be applied", {
      host_id: host.id,
      failed: attachments.failed,
    });
  }
  return { host: (await getHost(svc.sql, hostId))!, attachments };
}

/**
 * An `up` host stopped answering: it goes `down` with the reason, and its running and paused
 * VMs become `unknown` (their node is unreachable). Returns false when it was not `up`.
 */
export async function hostUnreachable(
  svc: Services,
  host: HostRow,
  reason: string,
  cause: Cause,
): Promise<boolean> {
  return await svc.events.transaction(async (tx, emit) => {
    const r = await changeHostStatus(tx, emit, host.id, "down", reason, cause, {
      onlyFrom: ["up"],
    });
    if (!r.changed) return false;
    for (const vmId of await vmIdsOnHost(tx, host.id, ["running", "paused"])) {
      await changeVmStatus(
        tx,
        emit,
        vmId,
        { status: "unknown", reason: `host ${host.name} is down: ${reason}` },
        cause,
        ["running", "paused"],
      );
    }
    return true;
  });
}
