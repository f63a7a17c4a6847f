/**
 * Helpers for orchestration tests: a job claimed for a step test (`claimedRun`), hosts backed
 * by fake nodes and initialised through the API (`addFakeHost`), and a VM ready to start.
 */
import { JobRun } from "../../control/jobs/plan.ts";
import { claimJob, enqueueJob } from "../../control/jobs/queue.ts";
import type { JobType } from "../../control/db/jobs.ts";
import type { TestApi } from "./api.ts";
import { type FakeNodeHandle, type FakeNodeOptions, startFakeNode } from "./fake_node.ts";

/** Queues a job and claims it (no workers needed); returns the context steps run in. */
export async function claimedRun(
  api: TestApi,
  type: JobType,
  resourceId: string,
  params: Record<string, unknown> = {},
  resourceType = type === "disk_create" ? "storage_object" : type === "host_deploy" ? "host" : "vm",
): Promise<JobRun> {
  const svc = api.runtime.svc;
  await svc.events.transaction((tx, emit) =>
    enqueueJob(tx, emit, {
      type,
      resource_type: resourceType,
      resource_id: resourceId,
      params,
      actor: "test",
      request_id: null,
    })
  );
  const claimed = await claimJob(svc.events, "test", 60_000, [type]);
  if (!claimed) throw new Error("no job to claim");
  return new JobRun(svc, claimed, new AbortController().signal);
}

/** A fake node registered and initialised as a host. */
export interface FakeHost {
  fake: FakeNodeHandle;
  // deno-lint-ignore no-explicit-any
  host: any;
}

/** Starts a fake node, registers it as host `name` and initialises it. */
export async function addFakeHost(
  api: TestApi,
  name: string,
  options: FakeNodeOptions & { labels?: Record<string, string> } = {},
): Promise<FakeHost> {
  const fake = await startFakeNode({ hostname: name, ...options });
  const host = await api.create("/v1/hosts", {
    name,
    address: "127.0.0.1",
    port: fake.port,
    labels: options.labels ?? {},
  });
  const init = await api.post(`/v1/hosts/${host.id}/init`);
  if (init.status !== 200) throw new Error(`init ${name}: ${JSON.stringify(init.body)}`);
  return { fake, host: init.body.host };
}

/**
 * A boot source whose kernel is a file in `pool` (created as a ready storage object), on host
 * `hostId`, or on every host of the pool (null, the default: it does not constrain placement).
 */
export async function bootSource(
  api: TestApi,
  poolId: string,
  hostId: string | null = null,
): Promise<string> {
  const obj = await api.create("/v1/storage-objects", {
    name: `vmlinux-${crypto.randomUUID().slice(0, 6)}`,
    storage_pool_id: poolId,
    type: "kernel",
    path: "vmlinux",
    host_id: hostId,
  });
  const src = await api.create("/v1/boot-sources", {
    name: `linux-${crypto.randomUUID().slice(0, 6)}`,
    kernel_image_id: obj.id,
  });
  return src.id;
}
