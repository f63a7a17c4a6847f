import assert from "node:assert/strict";
import {
  DeadlineExceededError,
  InternalError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { vmmApiErrorOf, VmmClient, waitForVmm } from "./client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Answers each request with `answers[path]` (raw status + body), recording what it got. */
async function withFakeVmm(
  answers: Record<string, [number, string] | "hang">,
  fn: (socketPath: string, seen: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "qarax-client-" });
  const path = `${dir}/api.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const seen: string[] = [];
  const conns = new Set<Deno.UnixConn>();
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tasks.push((async () => {
        const buf = new Uint8Array(65536);
        let text = "";
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) return;
            text += decoder.decode(buf.subarray(0, n));
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) continue;
            const len = Number(/Content-Length: (\d+)/.exec(text)?.[1] ?? 0);
            if (text.length < end + 4 + len) continue;
            const [method, target] = text.split(" ");
            seen.push(`${method} ${target} ${text.slice(end + 4, end + 4 + len)}`.trim());
            text = "";
            const answer = answers[target.replace("/api/v1/", "")] ?? [404, '["Not Found"]'];
            if (answer === "hang") continue;
            const [status, body] = answer;
            const head = status === 204
              ? `HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n\r\n`
              : `HTTP/1.1 ${status} \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
            await conn.write(encoder.encode(head + (status === 204 ? "" : body)));
          }
        } catch {
          // closed
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })());
    }
  })();
  try {
    await fn(path, seen);
  } finally {
    listener.close();
    for (const c of conns) c.close();
    await accepting.catch(() => {});
    await Promise.all(tasks);
    await Deno.remove(dir, { recursive: true });
  }
}

const PING = JSON.stringify({
  build_version: "v53.0-emulated",
  version: "53.0.0",
  pid: 7,
  features: ["kvm"],
});

Deno.test("calls hit CH's paths with CH's methods and JSON bodies", async () => {
  await withFakeVmm({
    "vm.create": [204, ""],
    "vm.resize": [204, ""],
    "vm.remove-device": [204, ""],
    "vm.snapshot": [204, ""],
    "vm.boot": [204, ""],
  }, async (socketPath, seen) => {
    using c = new VmmClient({ socketPath });
    await c.create({ memory: { size: 1 } });
    await c.boot();
    await c.resize({ desired_vcpus: 2 });
    await c.removeDevice("_disk0");
    await c.snapshot("file:///snap");
    assert.deepEqual(seen, [
      'PUT /api/v1/vm.create {"memory":{"size":1}}',
      "PUT /api/v1/vm.boot",
      'PUT /api/v1/vm.resize {"desired_vcpus":2}',
      'PUT /api/v1/vm.remove-device {"id":"_disk0"}',
      'PUT /api/v1/vm.snapshot {"destination_url":"file:///snap"}',
    ]);
  });
});

Deno.test("hot adds return PciDeviceInfo, cold adds null", async () => {
  await withFakeVmm({
    "vm.add-disk": [200, '{"id":"_disk2","bdf":"0000:00:06.0"}'],
    "vm.add-net": [204, ""],
  }, async (socketPath) => {
    using c = new VmmClient({ socketPath });
    assert.deepEqual(await c.addDisk({ path: "/d" }), { id: "_disk2", bdf: "0000:00:06.0" });
    assert.equal(await c.addNet({ tap: "t0" }), null);
  });
});

Deno.test("version comes from vmm.ping, is parsed and cached", async () => {
  await withFakeVmm({ "vmm.ping": [200, PING] }, async (socketPath, seen) => {
    using c = new VmmClient({ socketPath });
    assert.equal(c.cachedVersion, null);
    const v = await c.version();
    assert.deepEqual(v.version, { major: 53, minor: 0, patch: 0 });
    assert.equal(v.pid, 7);
    await c.version();
    assert.equal(seen.length, 1);
    assert.equal(c.cachedVersion, v);
  });
});

Deno.test("answers are checked at the edge; errors carry the CH error", async () => {
  await withFakeVmm({
    "vm.info": [200, '{"state":"Exploded","config":{}}'],
    "vm.counters": [200, '{"_disk0":{"read_bytes":"many"}}'],
    "vm.add-disk": [200, '{"id":"x"}'],
    "vm.boot": [404, '["Error from API","The VM could not boot","VM config is missing"]'],
  }, async (socketPath) => {
    using c = new VmmClient({ socketPath });
    await assert.rejects(c.info(), InternalError);
    await assert.rejects(c.counters(), InternalError);
    await assert.rejects(c.addDisk({}), InternalError);
    const err = await c.boot().catch((e) => e);
    assert.ok(err instanceof NotFoundError);
    assert.equal(
      err.message,
      "vm.boot: Error from API: The VM could not boot: VM config is missing",
    );
    assert.equal(vmmApiErrorOf(err)?.rootCause, "VM config is missing");
    assert.equal(vmmApiErrorOf(new Error("x")), null);
  });
});

Deno.test("per-call timeouts become DeadlineExceeded; no VMM is Unavailable", async () => {
  await withFakeVmm({ "vm.boot": "hang" }, async (socketPath) => {
    using c = new VmmClient({ socketPath, timeoutsMs: { "vm.boot": 50 } });
    await assert.rejects(c.boot(), DeadlineExceededError);
  });
  using gone = new VmmClient({ socketPath: "/nonexistent/api.sock" });
  await assert.rejects(gone.ping(), UnavailableError);
  await assert.rejects(waitForVmm("/nonexistent/api.sock", { timeoutMs: 60 }), UnavailableError);
});
