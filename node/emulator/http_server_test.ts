import assert from "node:assert/strict";
import {
  absPath,
  encodeAnswer,
  ParseError,
  parseErrorAnswer,
  RequestParser,
} from "./http_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("pipelined requests parse in order, whatever the chunking", () => {
  const wire = "GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n\r\n" +
    "PUT http://localhost/api/v1/vm.create HTTP/1.0\r\ncontent-length: 2\r\nX-Other: 1\r\n\r\n{}" +
    "PUT /api/v1/vm.boot HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  const bytes = encoder.encode(wire);
  for (const step of [1, 3, 17, bytes.length]) {
    const p = new RequestParser();
    const got = [];
    for (let i = 0; i < bytes.length; i += step) got.push(...p.push(bytes.subarray(i, i + step)));
    assert.deepEqual(
      got.map((r) => [r.method, r.path, r.version, r.body && decoder.decode(r.body)]),
      [
        ["GET", "/api/v1/vmm.ping", "HTTP/1.1", null],
        ["PUT", "/api/v1/vm.create", "HTTP/1.0", "{}"],
        ["PUT", "/api/v1/vm.boot", "HTTP/1.1", null],
      ],
      `step ${step}`,
    );
  }
});

Deno.test("Expect: 100-continue is signalled once the head is complete", () => {
  const p = new RequestParser();
  const acks: string[] = [];
  assert.deepEqual(
    p.push(
      encoder.encode("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"),
      (v) => acks.push(v),
    ),
    [],
  );
  assert.deepEqual(acks, ["HTTP/1.1"]);
  assert.equal(p.push(encoder.encode("{}")).length, 1);
});

Deno.test("parse errors carry micro-http's texts", () => {
  const cases: [string, string][] = [
    ["POST / HTTP/1.1\r\n\r\n", "Invalid HTTP Method: Unsupported HTTP method."],
    ["GET / HTTP/3\r\n\r\n", "Invalid HTTP Version: Unsupported HTTP version."],
    ["GET  HTTP/1.1\r\n\r\n", "Invalid URI: Empty URI not allowed."],
    [
      "GET / HTTP/1.1\r\nbroken\r\n\r\n",
      "Invalid header. Reason: Header is incorrectly formatted. Key: broken",
    ],
    [
      "PUT / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n",
      "Request payload with size 9999999 is larger than the limit of 4194304 allowed by server.",
    ],
    ["GET /" + "a".repeat(1100), "Invalid request."],
  ];
  for (const [wire, message] of cases) {
    assert.throws(
      () => new RequestParser().push(encoder.encode(wire)),
      (e) => e instanceof ParseError && e.message === message,
      wire,
    );
  }
});

Deno.test("answers are framed byte for byte like micro-http", () => {
  assert.equal(
    decoder.decode(encodeAnswer({ status: 200, body: "{}" })),
    "HTTP/1.1 200 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
  );
  assert.equal(
    decoder.decode(encodeAnswer({ status: 204, body: "ignored" })),
    "HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n\r\n",
  );
  assert.equal(
    decoder.decode(encodeAnswer({ status: 400 })),
    "HTTP/1.1 400 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
  );
  const parse = parseErrorAnswer("Invalid request.");
  assert.equal(parse.server, "Firecracker API");
  assert.equal(
    parse.body,
    '{ "error": "Invalid request.\nAll previous unanswered requests will be dropped." }',
  );
  assert.equal(absPath("http://localhost/api/v1/vm.info"), "/api/v1/vm.info");
  assert.equal(absPath("/api/v1/vm.info"), "/api/v1/vm.info");
});
