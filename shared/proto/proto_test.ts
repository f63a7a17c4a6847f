import assert from "node:assert/strict";
import { createChannel, createClient, createServer } from "nice-grpc";
import { fromTimestamp, node, toTimestamp, VmServiceDefinition } from "./mod.ts";
import { withUnimplemented } from "../../node/rpc/unimplemented.ts";
import { generate } from "../../proto/gen.ts";

const info: node.NodeInfo.$Properties = {
  hostname: "hv-1",
  totalCpus: 64,
  totalMemoryBytes: 2 ** 40, // beyond 32 bits: int64 must survive as a number
  architecture: "x86_64",
  kvmAvailable: true,
};

async function roundTrip(address: (port: number) => string, listenOn: string) {
  const server = createServer();
  server.add(
    VmServiceDefinition,
    withUnimplemented(VmServiceDefinition, { getNodeInfo: () => Promise.resolve(info) }),
  );
  const port = await server.listen(listenOn);
  const channel = createChannel(address(port));
  try {
    const client = createClient(VmServiceDefinition, channel);
    const got = await client.getNodeInfo({});
    assert.equal(got.hostname, "hv-1");
    assert.equal(got.totalMemoryBytes, 2 ** 40);
    assert.equal(typeof got.totalMemoryBytes, "number");
    assert.equal(got.kvmAvailable, true);
    assert.equal(got.firecrackerVersion, null); // proto3 optional: absent, not ""
    await assert.rejects(() => client.startVM({ id: "x" }), /UNIMPLEMENTED/);
  } finally {
    channel.close();
    await server.shutdown();
  }
}

Deno.test("GetNodeInfo round-trips over TCP", async () => {
  await roundTrip((port) => `127.0.0.1:${port}`, "127.0.0.1:0");
});

Deno.test("GetNodeInfo round-trips over a unix socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await roundTrip(() => `unix://${dir}/agent.sock`, `unix://${dir}/agent.sock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("timestamps convert both ways with millisecond precision", () => {
  const d = new Date("2026-11-26T10:20:30.456Z");
  assert.deepEqual(fromTimestamp(toTimestamp(d)), d);
  assert.equal(fromTimestamp(null), null);
});

Deno.test("generated code is up to date with proto/node.proto", async () => {
  const files = await generate();
  for (const [name, text] of files) {
    const current = await Deno.readTextFile(new URL(`./gen/${name}`, import.meta.url));
    assert.ok(current === text, `shared/proto/gen/${name} is stale: run deno task gen`);
  }
});
