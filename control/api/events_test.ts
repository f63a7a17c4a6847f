import assert from "node:assert/strict";
import { createTestApi, type TestApi } from "../../tests/support/api.ts";

/** Reads SSE frames from a response until `n` events arrived (or `ms` passed). */
async function readEvents(res: Response, n: number, ms = 5000) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { id: number; event: string; data: Record<string, unknown> }[] = [];
  let buf = "";
  const deadline = Date.now() + ms;
  try {
    while (events.length < n && Date.now() < deadline) {
      const r = await Promise.race([
        reader.read(),
        new Promise<null>((ok) => setTimeout(() => ok(null), deadline - Date.now())),
      ]);
      if (!r || r.done) break;
      buf += r.value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const f: Record<string, string> = {};
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const at = line.indexOf(": ");
          f[line.slice(0, at)] = line.slice(at + 2);
        }
        if (f.data) events.push({ id: Number(f.id), event: f.event, data: JSON.parse(f.data) });
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

function emitVm(api: TestApi, vm: string, status: string) {
  return api.runtime.svc.events.transaction((_tx, emit) =>
    emit({ type: "vm.status_changed", resource_type: "vm", resource_id: vm, data: { status } })
  );
}

Deno.test("GET /v1/events: live events, filters, resumption with Last-Event-ID", async (t) => {
  await using api = await createTestApi();
  const a = crypto.randomUUID();
  const b = crypto.randomUUID();
  await emitVm(api, a, "old");

  await t.step("without a position: only new events, as SSE frames", async () => {
    const res = await api.app.request("/v1/events?type=vm");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    const reading = readEvents(res, 2);
    await new Promise((r) => setTimeout(r, 50));
    await emitVm(api, a, "running");
    await api.runtime.svc.events.transaction((_tx, emit) =>
      emit({ type: "host.status_changed", resource_type: "host", resource_id: b, data: {} })
    );
    await emitVm(api, b, "paused");
    const events = await reading;
    assert.deepEqual(
      events.map((e) => [e.event, e.data.resource_id, (e.data.data as { status: string }).status]),
      [
        ["vm.status_changed", a, "running"],
        ["vm.status_changed", b, "paused"],
      ],
    );
    assert.ok(events[0].id < events[1].id);
  });

  await t.step("Last-Event-ID replays what was missed, then continues live", async () => {
    const first = (await readEvents(await api.app.request("/v1/events?last_event_id=0"), 1))[0];
    assert.equal((first.data.data as { status: string }).status, "old");
    const res = await api.app.request(`/v1/events?resource_id=${a}`, {
      headers: { "last-event-id": String(first.id) },
    });
    const reading = readEvents(res, 2);
    await new Promise((r) => setTimeout(r, 50));
    await emitVm(api, a, "shutdown");
    const events = await reading;
    assert.deepEqual(events.map((e) => (e.data.data as { status: string }).status), [
      "running",
      "shutdown",
    ]);
  });

  await t.step("bad positions and filters are 422", async () => {
    const bad = await api.get("/v1/events", { "last-event-id": "abc" });
    assert.equal(bad.status, 422);
    assert.equal((await api.get("/v1/events?type=Not%20A%20Type")).status, 422);
    assert.equal((await api.get("/v1/events?resource_id=nope")).status, 422);
  });

  await t.step("a position older than the retained events is flagged", async () => {
    await api.db.sql`delete from events where id <= (select min(id) + 1 from events)`;
    const res = await api.app.request("/v1/events?last_event_id=1");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("stream.truncated")) text += (await reader.read()).value;
    await reader.cancel();
    assert.match(text, /event: stream.truncated\ndata: \{"requested_after":1,"oldest_id":\d+\}/);
  });
});

Deno.test("GET /v1/events ends when the server shuts down", async () => {
  const api = await createTestApi();
  try {
    const res = await api.app.request("/v1/events");
    const reader = res.body!.getReader();
    await reader.read(); // the opening comment
    const end = reader.read();
    // Disposing the API aborts the shutdown signal: the stream must end, not hang.
    await api[Symbol.asyncDispose]();
    assert.equal((await end).done, true);
  } catch (err) {
    await api[Symbol.asyncDispose]().catch(() => {});
    throw err;
  }
});
