import assert from "node:assert/strict";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  type QaraxError,
  UnauthenticatedError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { ApiClient, fetchFailureReason, fromServer, ServerAnswer } from "./client.ts";
import { errorReport, EXIT, exitCodeFor } from "./exit.ts";
import { resolveId } from "./resolve.ts";

/** A client whose requests go to `handler` (recorded in `seen`). */
function fakeClient(handler: (req: Request) => Response | Promise<Response>, token?: string) {
  const seen: Request[] = [];
  const client = new ApiClient("http://api.test", token, (input, init) => {
    const req = new Request(input as string, init);
    seen.push(req);
    return Promise.resolve(handler(req));
  });
  return { client, seen };
}

async function failure(p: Promise<unknown>): Promise<QaraxError> {
  try {
    await p;
  } catch (err) {
    return err as QaraxError;
  }
  assert.fail("expected a failure");
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

Deno.test("requests carry the token, JSON bodies and repeated query parameters", async () => {
  const { client, seen } = fakeClient(() => json(201, { id: "1" }), "s3cret");
  const answer = await client.request("POST", "/v1/vms", {
    body: { name: "a" },
    query: { tag: ["x", "y"], skip: undefined },
  });
  assert.deepEqual(answer.body, { id: "1" });
  assert.equal(seen[0].url, "http://api.test/v1/vms?tag=x&tag=y");
  assert.equal(seen[0].headers.get("authorization"), "Bearer s3cret");
  assert.equal(seen[0].headers.get("content-type"), "application/json");
  assert.deepEqual(await seen[0].json(), { name: "a" });
});

Deno.test("an error body becomes its domain error, with status and request id", async () => {
  const { client } = fakeClient(() =>
    json(422, {
      code: "invalid_argument",
      message: "invalid request: memory_size",
      details: [{ field: "memory_size", message: "must be a multiple of 1 MiB" }],
      request_id: "req-42",
    })
  );
  const err = await client.request("POST", "/v1/vms", { body: {} }).catch((e) => e);
  assert.ok(err instanceof InvalidArgumentError);
  assert.ok(fromServer(err));
  assert.deepEqual([err.cause.status, err.cause.requestId], [422, "req-42"]);
  // A refusal by the server is exit 1, not a usage error, even for invalid_argument.
  assert.equal(exitCodeFor(err), EXIT.failed);
  assert.equal(
    errorReport(err, (f) => (f === "memory_size" ? "--memory" : undefined)),
    "qarax: invalid request: memory_size\n" +
      "  - memory_size (--memory): must be a multiple of 1 MiB\n" +
      "  (code: invalid_argument, HTTP 422, request id: req-42)\n",
  );
});

Deno.test("a refusal about one field names the flag the user typed", async () => {
  const flags: Record<string, string> = {
    desired_vcpus: "--vcpus",
    desired_ram: "--memory",
    vcpus: "--vcpus",
    name: "<name>",
  };
  const report = async (status: number, body: Record<string, unknown>) => {
    const { client } = fakeClient(() => json(status, { ...body, request_id: "r-1" }));
    const err = await client.request("POST", "/v1/vms/x/resize", { body: {} }).catch((e) => e);
    return errorReport(err, (f) => flags[f]);
  };
  const resize = await report(422, {
    code: "invalid_argument",
    message: "desired_vcpus: must be from 1 to max_vcpus (4)",
    details: [{ field: "desired_vcpus", message: "must be from 1 to max_vcpus (4)" }],
  });
  assert.equal(
    resize,
    "qarax: --vcpus: must be from 1 to max_vcpus (4)\n" +
      "  (code: invalid_argument, HTTP 422, request id: r-1)\n",
  );
  assert.doesNotMatch(resize, /desired_vcpus/);
  const ram = await report(422, {
    code: "invalid_argument",
    message: "desired_ram: a running vm's memory cannot shrink",
    details: [{ field: "desired_ram", message: "a running vm's memory cannot shrink" }],
  });
  assert.match(ram, /^qarax: --memory: a running vm's memory cannot shrink\n/);
  // A positional argument or an unknown field keeps the API's name.
  const name = await report(422, {
    code: "invalid_argument",
    message: "name: 1-63 characters",
    details: [{ field: "name", message: "1-63 characters" }],
  });
  assert.match(name, /^qarax: name: 1-63 characters\n/);
  // Several fields: each detail line names the field and its flag.
  const two = await report(422, {
    code: "invalid_argument",
    message: "invalid request: desired_vcpus, desired_ram",
    details: [
      { field: "desired_vcpus", message: "Too small" },
      { field: "desired_ram", message: "Too big" },
    ],
  });
  assert.match(
    two,
    / {2}- desired_vcpus \(--vcpus\): Too small\n {2}- desired_ram \(--memory\): Too big/,
  );
});

Deno.test("non-API answers (a proxy page) keep their status and first line", async () => {
  const { client } = fakeClient(() =>
    new Response("<html>Bad Gateway</html>\n<body>", {
      status: 502,
      headers: { "content-type": "text/html", "x-request-id": "p-1" },
    })
  );
  const err = await failure(client.get("/v1/vms"));
  assert.equal(err.code, "internal");
  assert.equal(err.message, "the server answered 502: <html>Bad Gateway</html>");
  assert.equal((err.cause as ServerAnswer).requestId, "p-1");
  const { client: c401 } = fakeClient(() => new Response("no", { status: 401 }));
  const unauth = await c401.get("/v1/vms").catch((e) => e);
  assert.ok(unauth instanceof UnauthenticatedError);
  assert.equal(exitCodeFor(unauth), EXIT.auth);
});

Deno.test("an unreachable server is exit 3 and says where it tried", async () => {
  const port = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  })();
  const client = new ApiClient(`http://127.0.0.1:${port}`);
  const err = await client.get("/v1/vms").catch((e) => e);
  assert.ok(err instanceof UnavailableError);
  assert.ok(!fromServer(err));
  assert.match(
    err.message,
    new RegExp(`cannot reach qarax at http://127.0.0.1:${port}: .*refused`, "i"),
  );
  assert.equal(exitCodeFor(err), EXIT.unreachable);
  const dns = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (http://x.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
    ),
  });
  assert.equal(
    fetchFailureReason(dns),
    "dns error: failed to lookup address information: Name or service not known",
  );
  // The same code from the server (its node is down) is an API failure: exit 1.
  assert.equal(
    exitCodeFor(new UnavailableError("node down", { cause: new ServerAnswer(503, "r") })),
    EXIT.failed,
  );
  assert.equal(exitCodeFor(new InvalidArgumentError("bad flag")), EXIT.usage);
  assert.equal(exitCodeFor(new Error("bug")), EXIT.failed);
  assert.match(errorReport(new Error("bug")), /^qarax: unexpected error: Error: bug/);
});

Deno.test("lists follow next_cursor until done or the limit", async () => {
  const pages: Record<string, unknown> = {
    "": { items: [{ id: 1 }, { id: 2 }], next_cursor: "c2" },
    c2: { items: [{ id: 3 }], next_cursor: null },
  };
  const { client, seen } = fakeClient((req) =>
    json(200, pages[new URL(req.url).searchParams.get("cursor") ?? ""])
  );
  assert.deepEqual((await client.list("/v1/vms", { status: "running" })).items.length, 3);
  assert.equal(new URL(seen[0].url).searchParams.get("status"), "running");
  assert.equal(new URL(seen[0].url).searchParams.get("limit"), "1000");
  const capped = await client.list("/v1/vms", {}, 2);
  assert.deepEqual([capped.items.length, capped.next_cursor], [2, "c2"]);
  assert.equal(new URL(seen[2].url).searchParams.get("limit"), "2");
});

Deno.test("names resolve through ?name=; ids pass without a request", async () => {
  const vms = [
    { id: "11111111-1111-4111-8111-111111111111", name: "web" },
    { id: "22222222-2222-4222-8222-222222222222", name: "dup" },
    { id: "33333333-3333-4333-8333-333333333333", name: "dup" },
  ];
  const { client, seen } = fakeClient((req) => {
    const name = new URL(req.url).searchParams.get("name");
    return json(200, { items: vms.filter((v) => v.name === name), next_cursor: null });
  });
  assert.equal(await resolveId(client, "vm", "web"), vms[0].id);
  assert.equal(new URL(seen[0].url).pathname, "/v1/vms");
  assert.equal(await resolveId(client, "vm", vms[1].id.toUpperCase()), vms[1].id.toUpperCase());
  assert.equal(seen.length, 1);
  await assert.rejects(resolveId(client, "vm", "nope"), (err: unknown) => {
    assert.ok(err instanceof NotFoundError);
    assert.equal(err.message, 'no vm named "nope"');
    assert.equal(exitCodeFor(err), EXIT.failed);
    return true;
  });
  await assert.rejects(
    resolveId(client, "object", "dup", { hint: "narrow with --pool" }),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.match(
        err.message,
        /2 storage objects are named "dup" \(2222.*, 3333.*\); pass an id or narrow with --pool/,
      );
      assert.equal(exitCodeFor(err), EXIT.usage);
      return true;
    },
  );
  await assert.rejects(resolveId(client, "job", "last"), /not a job id \(jobs have no names\)/);
  // A failed precondition from the server keeps its class.
  const { client: busy } = fakeClient(() =>
    json(409, {
      code: "failed_precondition",
      message: "vm is running",
      details: [],
      request_id: null,
    })
  );
  await assert.rejects(busy.get("/v1/vms/x"), FailedPreconditionError);
});
