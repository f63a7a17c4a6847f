/**
 * Contract: micro-http framing as CH serves it, checked with raw bytes on the socket: status
 * line without reason phrase, header order, no length on 204, keep-alive and pipelining,
 * the 10-connection limit, parse errors in micro-http's form, body-less and body-taking
 * actions, methods on the wrong route, 4 MiB limit, Expect: 100-continue.
 */
import assert from "node:assert/strict";
import { contractTest } from "../support/contract.ts";
import { startVmm } from "../support/emulator.ts";
import { RawConnection, rawRequest, req } from "../support/raw_http.ts";

const API = "/api/v1";
const JSON_HEADERS = (length: number) => [
  "Server: Cloud Hypervisor API",
  "Connection: keep-alive",
  "Content-Type: application/json",
  `Content-Length: ${length}`,
];

contractTest("200/204/4xx answers are framed exactly like micro-http", {}, async () => {
  await using vmm = await startVmm();
  const ping = await rawRequest(vmm.socketPath, req("GET", `${API}/vmm.ping`));
  assert.equal(ping.statusLine, "HTTP/1.1 200 ");
  assert.deepEqual(ping.headerLines, JSON_HEADERS(ping.body.length));
  assert.equal(JSON.parse(ping.body).pid, vmm.pid);

  const created = await rawRequest(vmm.socketPath, req("PUT", `${API}/vm.create`, "{}"));
  assert.equal(created.statusLine, "HTTP/1.1 204 ");
  assert.deepEqual(created.headerLines, ["Server: Cloud Hypervisor API", "Connection: keep-alive"]);
  assert.equal(created.body, "");

  const unknown = await rawRequest(vmm.socketPath, req("GET", `${API}/vm.nothing`));
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.headerLines, JSON_HEADERS(13));
  assert.equal(unknown.body, '["Not Found"]');

  // The full URI form is routed by its path; a trailing slash is another path.
  const full = await rawRequest(vmm.socketPath, req("GET", `http://localhost${API}/vm.info`));
  assert.equal(full.status, 200);
  const slash = await rawRequest(vmm.socketPath, req("GET", `${API}/vm.info/`));
  assert.equal(slash.status, 404);
});

contractTest(
  "keep-alive and pipelining: answers come back in order on one connection",
  {},
  async () => {
    await using vmm = await startVmm();
    using conn = await RawConnection.open(vmm.socketPath);
    await conn.write(req("GET", `${API}/vmm.ping`));
    assert.equal((await conn.response()).status, 200);
    await conn.write(req("GET", `${API}/vm.info`));
    assert.equal((await conn.response()).status, 404);
    // Three requests in one write.
    await conn.write(
      req("PUT", `${API}/vm.create`, "{}") + req("GET", `${API}/vm.info`) +
        req("PUT", `${API}/vm.delete`),
    );
    const [a, b, c] = [await conn.response(), await conn.response(), await conn.response()];
    assert.deepEqual([a.status, b.status, c.status], [204, 200, 204]);
    assert.equal(JSON.parse(b.body).state, "Created");
    // A request split across writes is reassembled.
    const split = req("PUT", `${API}/vm.create`, '{"memory":{"size":268435456}}');
    await conn.write(split.slice(0, 7));
    await conn.write(split.slice(7, 60));
    await conn.write(split.slice(60));
    assert.equal((await conn.response()).status, 204);
  },
);

contractTest(
  "the 11th simultaneous connection gets micro-http's 503 and is closed",
  {},
  async () => {
    await using vmm = await startVmm();
    const conns: RawConnection[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const conn = await RawConnection.open(vmm.socketPath);
        conns.push(conn);
        // Make sure the server has taken each connection before opening the next.
        await conn.write(req("GET", `${API}/vmm.ping`));
        assert.equal((await conn.response()).status, 200);
      }
      using eleventh = await RawConnection.open(vmm.socketPath);
      const text = await eleventh.untilClose();
      assert.equal(
        text,
        'HTTP/1.1 503\r\nServer: Firecracker API\r\nConnection: close\r\nContent-Length: 40\r\n\r\n{ "error": "Too many open connections" }',
      );
      // Closing one frees a slot.
      conns.pop()!.close();
      await new Promise((r) => setTimeout(r, 50));
      const again = await rawRequest(vmm.socketPath, req("GET", `${API}/vmm.ping`));
      assert.equal(again.status, 200);
    } finally {
      for (const c of conns) c.close();
    }
  },
);

contractTest(
  'parse errors: 400 in micro-http\'s { "error" } form, Firecracker server',
  {},
  async () => {
    await using vmm = await startVmm();
    const cases: [string, string][] = [
      [`POST ${API}/vmm.ping HTTP/1.1\r\n\r\n`, "Invalid HTTP Method: Unsupported HTTP method."],
      [`get ${API}/vmm.ping HTTP/1.1\r\n\r\n`, "Invalid HTTP Method: Unsupported HTTP method."],
      [`GET ${API}/vmm.ping HTTP/2.0\r\n\r\n`, "Invalid HTTP Version: Unsupported HTTP version."],
      [
        `PUT ${API}/vm.create HTTP/1.1\r\nContent-Length: abc\r\n\r\n`,
        "Invalid header. Reason: Invalid value. Key:Content-Length; Value: abc",
      ],
      [
        `PUT ${API}/vm.create HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n`,
        "Request payload with size 4194305 is larger than the limit of 4194304 allowed by server.",
      ],
    ];
    for (const [request, reason] of cases) {
      using conn = await RawConnection.open(vmm.socketPath);
      await conn.write(request);
      const res = await conn.response();
      assert.equal(res.statusLine, "HTTP/1.1 400 ", request);
      const body = `{ "error": "${reason}\nAll previous unanswered requests will be dropped." }`;
      assert.deepEqual(res.headerLines, [
        "Server: Firecracker API",
        "Connection: keep-alive",
        "Content-Type: text/plain",
        `Content-Length: ${body.length}`,
      ]);
      assert.equal(res.body, body);
      // After a bad request line the connection is still usable. (After a bad header, micro-http
      // may be left mid-request, so clients must reconnect; not part of the contract.)
      if (reason.startsWith("Invalid HTTP")) {
        await conn.write(req("GET", `${API}/vmm.ping`));
        assert.equal((await conn.response()).status, 200);
      }
    }
  },
);

contractTest("bodies: refused on body-less actions, required by the others", {}, async () => {
  await using vmm = await startVmm();
  const s = vmm.socketPath;
  const badRequest = '["Bad Request"]';
  // A body on an action that takes none.
  for (
    const action of ["vm.boot", "vm.shutdown", "vm.pause", "vm.resume", "vm.delete", "vm.reboot"]
  ) {
    const res = await rawRequest(s, req("PUT", `${API}/${action}`, "{}"));
    assert.equal(res.status, 400, action);
    assert.equal(res.body, badRequest, action);
  }
  // No body on an action that needs one.
  for (
    const action of ["vm.resize", "vm.add-disk", "vm.snapshot", "vm.restore", "vm.remove-device"]
  ) {
    const res = await rawRequest(s, req("PUT", `${API}/${action}`));
    assert.equal(res.status, 400, action);
    assert.equal(res.body, badRequest, action);
  }
  // vm.create without body: a bare 400 (Content-Length: 0).
  const create = await rawRequest(s, req("PUT", `${API}/vm.create`));
  assert.equal(create.status, 400);
  assert.deepEqual(create.headerLines, JSON_HEADERS(0));
  // Content-Length: 0 counts as no body.
  const zero = await rawRequest(s, req("PUT", `${API}/vm.delete`, ""));
  assert.equal(zero.status, 204);
});

contractTest(
  "methods: GET on a PUT route, PUT on a GET route, PATCH/DELETE on actions",
  {},
  async () => {
    await using vmm = await startVmm();
    const s = vmm.socketPath;
    for (
      const [method, path] of [
        ["GET", "vm.boot"],
        ["PUT", "vm.info"],
        ["PUT", "vmm.ping"],
        [
          "PUT",
          "vm.counters",
        ],
        ["GET", "vmm.shutdown"],
        ["GET", "vm.create"],
      ]
    ) {
      const res = await rawRequest(s, req(method, `${API}/${path}`));
      assert.equal(res.status, 400, `${method} ${path}`);
      assert.equal(res.body, '["Bad Request"]', `${method} ${path}`);
    }
    for (const method of ["PATCH", "DELETE"]) {
      const res = await rawRequest(s, req(method, `${API}/vm.boot`));
      assert.equal(res.status, 400);
      assert.equal(res.body, "");
      assert.deepEqual(res.headerLines, JSON_HEADERS(0));
    }
  },
);

contractTest("JSON that does not deserialize: 400 with serde's message", {}, async () => {
  await using vmm = await startVmm();
  const s = vmm.socketPath;
  const cases: [string, string, string][] = [
    ["vm.resize-disk", '{"id":"x"}', "missing field `desired_size` at line 1 column 10"],
    [
      "vm.create",
      '{"memory":{"size":"big"}}',
      'invalid type: string "big", expected u64 at line 1 column 23',
    ],
    ["vm.create", '{"cpus":{"boot_vcpus":1}}', "missing field `max_vcpus` at line 1 column 24"],
    [
      "vm.create",
      '{"serial":{"mode":"Loud"}}',
      "unknown variant `Loud`, expected one of `Off`, `Pty`, `Tty`, `File`, `Socket`, `Null` at line 1 column 24",
    ],
    ["vm.create", "{", "EOF while parsing an object at line 1 column 1"],
    ["vm.resize", "[1,", "EOF while parsing a value at line 1 column 3"],
    ["vm.remove-device", "nope", "expected ident at line 1 column 2"],
  ];
  for (const [action, body, message] of cases) {
    const res = await rawRequest(s, req("PUT", `${API}/${action}`, body));
    assert.equal(res.status, 400, body);
    assert.deepEqual(JSON.parse(res.body), ["Failed to deserialize JSON", message], body);
  }
  // Unknown fields are ignored, not rejected.
  const extra = await rawRequest(
    s,
    req("PUT", `${API}/vm.create`, '{"whatever":1,"memory":{"size":1073741824,"color":"red"}}'),
  );
  assert.equal(extra.status, 204);
});

contractTest("Expect: 100-continue is acknowledged before the body is sent", {}, async () => {
  await using vmm = await startVmm();
  using conn = await RawConnection.open(vmm.socketPath);
  const body = '{"memory":{"size":268435456}}';
  await conn.write(
    `PUT ${API}/vm.create HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  const cont = await conn.response();
  assert.equal(cont.statusLine, "HTTP/1.1 100 ");
  assert.deepEqual(cont.headerLines, ["Server: Firecracker API", "Connection: keep-alive"]);
  await conn.write(body);
  assert.equal((await conn.response()).status, 204);
});

contractTest("error bodies are JSON string arrays, outermost message first", {}, async () => {
  await using vmm = await startVmm();
  const res = await rawRequest(vmm.socketPath, req("PUT", `${API}/vm.boot`));
  assert.equal(res.status, 404);
  assert.deepEqual(JSON.parse(res.body), [
    "Error from API",
    "The VM could not boot",
    "VM config is missing",
  ]);
  const shut = await rawRequest(vmm.socketPath, req("PUT", `${API}/vm.shutdown`));
  assert.equal(shut.status, 500);
  assert.deepEqual(JSON.parse(shut.body), [
    "Error from API",
    "The VM could not shutdown",
    "VM is not running",
  ]);
});
