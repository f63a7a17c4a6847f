import assert from "node:assert/strict";
import {
  CancelledError,
  DeadlineExceededError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { ApiClient, fromServer } from "./client.ts";
import { EXIT, exitCodeFor } from "./exit.ts";
import type { Io } from "./framework.ts";
import { type Job, jobOf, waitForJob } from "./wait.ts";

function job(patch: Partial<Job>): Job {
  return {
    id: "7b6d5c4e-0000-4000-8000-000000000001",
    type: "vm_start",
    status: "pending",
    resource_type: "vm",
    resource_id: null,
    progress: 0,
    progress_message: null,
    error: null,
    result: null,
    request_id: "req-1",
    created_at: "2026-01-01T00:00:00Z",
    started_at: null,
    finished_at: null,
    ...patch,
  };
}

function testIo(): Io & { errText: () => string } {
  const err: string[] = [];
  return {
    out: () => {},
    err: (s) => err.push(s),
    errIsTty: false,
    stdinIsTty: false,
    env: () => undefined,
    readStdin: () => Promise.resolve(""),
    now: () => new Date(),
    errText: () => err.join(""),
  };
}

/** A client answering GET /v1/jobs/{id} with the next state of `states` each time. */
function jobServer(states: Job[]) {
  const waits: string[] = [];
  let i = 0;
  const client = new ApiClient("http://api.test", undefined, (input) => {
    waits.push(new URL(input as string).searchParams.get("wait") ?? "");
    const body = states[Math.min(i++, states.length - 1)];
    return Promise.resolve(
      new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } }),
    );
  });
  return { client, waits };
}

Deno.test("waiting prints one plain line per change and returns the finished job", async () => {
  const io = testIo();
  const { client, waits } = jobServer([
    job({ status: "pending" }),
    job({ status: "running", progress: 40, progress_message: "creating on node" }),
    job({ status: "running", progress: 40, progress_message: "creating on node" }),
    job({ status: "succeeded", progress: 100 }),
  ]);
  const done = await waitForJob(client, job({}).id, {
    io,
    timeoutMs: 10_000,
    signal: new AbortController().signal,
  });
  assert.equal(done.status, "succeeded");
  assert.deepEqual(io.errText().split("\n").filter(Boolean), [
    `job ${done.id} vm_start pending`,
    `job ${done.id} vm_start running 40% creating on node`,
    `job ${done.id} vm_start succeeded 100%`,
  ]);
  // Long-polls: the server is asked to hold each request.
  assert.ok(waits.every((w) => Number(w) >= 1), waits.join(","));
});

Deno.test("on a terminal the progress line redraws in place and is cleared at the end", async () => {
  const io = { ...testIo(), errIsTty: true };
  const writes: string[] = [];
  io.err = (s) => writes.push(s);
  const { client } = jobServer([
    job({ status: "running", progress: 40, progress_message: "copying" }),
    job({ status: "succeeded", progress: 100 }),
  ]);
  await waitForJob(client, job({}).id, {
    io,
    timeoutMs: 10_000,
    signal: new AbortController().signal,
  });
  assert.ok(writes.length >= 3, writes.join("|"));
  // Every draw returns to the start of the line and clears it; no newline is ever printed.
  assert.ok(writes.every((w) => w.startsWith("\r\x1b[2K") && !w.includes("\n")));
  assert.match(writes[0], /vm_start ████░░░░░░ {2}40% running · copying \(\d/);
  assert.match(writes[writes.length - 2], /██████████ 100% succeeded/);
  assert.equal(writes[writes.length - 1], "\r\x1b[2K");
});

Deno.test("a failed job becomes its domain error (exit 1), naming the job", async () => {
  const { client } = jobServer([
    job({
      status: "failed",
      error: { code: "unavailable", message: "node hv1 unreachable", details: [] },
    }),
  ]);
  const err = await waitForJob(client, job({}).id, {
    io: testIo(),
    timeoutMs: 5000,
    signal: new AbortController().signal,
  }).catch((e) => e);
  assert.ok(err instanceof UnavailableError);
  assert.equal(err.message, `job ${job({}).id} (vm_start) failed: node hv1 unreachable`);
  assert.ok(fromServer(err));
  assert.equal(err.cause.jobId, job({}).id);
  assert.equal(exitCodeFor(err), EXIT.failed);
});

Deno.test("waiting gives up at the timeout (exit 5) and stops on Ctrl-C (exit 130)", async () => {
  const { client } = jobServer([job({ status: "running", progress: 10 })]);
  const err = await waitForJob(client, job({}).id, {
    io: testIo(),
    timeoutMs: 600,
    signal: new AbortController().signal,
  }).catch((e) => e);
  assert.ok(err instanceof DeadlineExceededError);
  assert.match(err.message, /still running; follow it with: qarax job wait/);
  assert.equal(exitCodeFor(err), EXIT.timeout);

  const ac = new AbortController();
  setTimeout(() => ac.abort(new CancelledError("interrupted")), 300);
  const stopped = await waitForJob(client, job({}).id, {
    io: testIo(),
    timeoutMs: 60_000,
    signal: ac.signal,
  }).catch((e) => e);
  assert.ok(stopped instanceof CancelledError);
  assert.match(stopped.message, /continues on the server/);
  assert.equal(exitCodeFor(stopped), EXIT.interrupted);
});

Deno.test("the job of an action: a Job body, {job}, {job_id} or a Location header", () => {
  const j = job({});
  assert.equal(jobOf(j)?.job, j);
  assert.equal(jobOf({ job: j })?.id, j.id);
  assert.equal(jobOf({ job_id: j.id })?.id, j.id);
  assert.equal(
    jobOf({}, new Headers({ location: `/v1/jobs/${j.id}` }))?.id,
    j.id,
  );
  assert.equal(jobOf({ id: "x", name: "vm" }), undefined);
});
