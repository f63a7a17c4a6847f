/**
 * `qarax job cancel`: a pending job cancelled at once (and again, harmlessly), a running job
 * asked to stop (`--wait` gives up with exit 5 while it runs), a finished job refused, with a
 * control plane whose workers are off so the jobs stay where the test puts them.
 */
import assert from "node:assert/strict";
import { expectCode, qaraxFor, startControlPlane } from "../support/cli.ts";

Deno.test("qarax job cancel: pending, running, finished", async (t) => {
  await using cp = await startControlPlane({ jobs: { workers: 0 } });
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-cancel-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[]) => expectCode(await qarax(args), 0, args.join(" "));
  const sql = cp.db.sql;
  try {
    await ok(["vm", "create", "web-1", "--vcpus", "1", "--memory", "256MiB"]);
    const start = async () => (await ok(["vm", "start", "web-1", "-o", "json"])).json().id;

    await t.step("a pending job: cancelled at once, twice is fine", async () => {
      const id = await start();
      const r = await ok(["job", "cancel", id]);
      assert.equal(r.stdout, `job ${id} vm_start cancelled\n`);
      const again = (await ok(["job", "cancel", id, "--wait", "-o", "json"])).json();
      assert.equal(again.status, "cancelled");
      assert.equal(again.error.message, "cancelled by anonymous");
      // Waiting on a cancelled job: it did not do its work (exit 1), and says who stopped it.
      const waited = expectCode(await qarax(["job", "wait", id]), 1, "job wait on a cancelled job");
      assert.match(waited.stderr, /vm_start\) cancelled by anonymous/);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().status, "created");
    });

    await t.step("a running job: cancel requested; --wait gives up while it runs", async () => {
      const id = await start();
      await sql`update jobs set status = 'running', lease_owner = 'elsewhere#1',
                  lease_expires_at = now() + interval '1 hour' where id = ${id}`;
      const r = await ok(["job", "cancel", id]);
      assert.match(r.stdout, new RegExp(`^job ${id} vm_start running: cancel requested`));
      assert.match(r.stdout, new RegExp(`qarax job wait ${id}`));
      const waited = expectCode(
        await qarax(["job", "cancel", id, "--wait", "--timeout", "1s"]),
        5,
        "cancel --wait on a job nobody runs",
      );
      assert.match(waited.stderr, /still running/);
      const job = (await ok(["job", "get", id, "-o", "json"])).json();
      assert.ok(job.cancel_requested_at);

      await sql`update jobs set status = 'failed', finished_at = now() where id = ${id}`;
      const late = expectCode(await qarax(["job", "cancel", id]), 1, "cancel a failed job");
      assert.match(late.stderr, /cannot cancel job .*: it failed/);
      assert.match(late.stderr, /HTTP 409/);
    });

    await t.step("an unknown job: exit 1, not found", async () => {
      const r = expectCode(
        await qarax(["job", "cancel", "00000000-0000-4000-8000-000000000000"]),
        1,
        "unknown job",
      );
      assert.match(r.stderr, /not found|no job/i);
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
