import assert from "node:assert/strict";
import { createChannel, createClient, Metadata } from "nice-grpc";
import { VmServiceDefinition } from "../../shared/proto/mod.ts";
import { startNodeServerProcess } from "../../tests/support/node_server.ts";

// The server runs in its own process (tests/support/node_server.ts): see deno#36788 there.
async function withServer(token: string, fn: (address: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await using srv = await startNodeServerProcess({ dir, token });
    await fn(srv.address);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("with a token, calls without or with a wrong bearer are UNAUTHENTICATED", async () => {
  await withServer("s3cret", async (address) => {
    const channel = createChannel(address);
    try {
      const client = createClient(VmServiceDefinition, channel);
      await assert.rejects(() => client.getNodeInfo({}), /UNAUTHENTICATED/);
      await assert.rejects(
        () => client.getNodeInfo({}, { metadata: Metadata({ authorization: "Bearer nope" }) }),
        /UNAUTHENTICATED/,
      );
      const ok = await client.getNodeInfo({}, {
        metadata: Metadata({ authorization: "Bearer s3cret" }),
      });
      assert.equal(ok.hostname, Deno.hostname());
    } finally {
      channel.close();
    }
  });
});

Deno.test("node info describes this host", async () => {
  await withServer("", async (address) => {
    const channel = createChannel(address);
    try {
      const info = await createClient(VmServiceDefinition, channel).getNodeInfo({});
      assert.ok(info.totalCpus >= 1);
      assert.ok(info.totalMemoryBytes > 0);
      assert.match(info.nodeVersion, /^\d+\.\d+\.\d+/);
      assert.equal(info.cloudHypervisorVersion, "");
    } finally {
      channel.close();
    }
  });
});
