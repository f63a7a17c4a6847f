import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { natChain, natRemovalScript, natScript, parseNftTable } from "./nat.ts";

Deno.test("a network's NAT is one chain with one masquerade rule, replaced in one transaction", () => {
  assert.equal(
    natScript({ bridge: "qbr0", subnet: "10.89.0.0/24", owner: "net-1" }),
    [
      "add table ip qarax",
      "add chain ip qarax nat-qbr0 { type nat hook postrouting priority srcnat; policy accept; }",
      "flush chain ip qarax nat-qbr0",
      'add rule ip qarax nat-qbr0 ip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 oifname != "qbr0" masquerade comment "qarax:network:net-1"',
    ].join("\n") + "\n",
  );
  assert.equal(
    natRemovalScript("br.0-x"),
    "add table ip qarax\nadd chain ip qarax nat-br.0-x\nflush chain ip qarax nat-br.0-x\n" +
      "delete chain ip qarax nat-br.0-x\n",
  );
});

Deno.test("names and owners are validated before they reach nft", () => {
  assert.throws(() => natChain("br;flush"), InvalidArgumentError);
  assert.throws(() => natScript({ bridge: "qbr0", subnet: "10.89.0.0/24", owner: 'x" accept' }));
  assert.throws(() => natScript({ bridge: "qbr0", subnet: "10.89.0.5/24", owner: "n" }));
});

Deno.test("nft -j output becomes chains with their rules", () => {
  // Trimmed `nft -j list table ip qarax` (nftables 1.0.6).
  const text = JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6", json_schema_version: 1 } },
      { table: { family: "ip", name: "qarax", handle: 1 } },
      {
        chain: {
          family: "ip",
          table: "qarax",
          name: "nat-qbr0",
          handle: 1,
          type: "nat",
          hook: "postrouting",
          prio: 100,
          policy: "accept",
        },
      },
      {
        rule: {
          family: "ip",
          table: "qarax",
          chain: "nat-qbr0",
          handle: 4,
          comment: "qarax:network:abc",
          expr: [{ masquerade: null }],
        },
      },
      { chain: { family: "ip", table: "qarax", name: "nat-qbr1", handle: 3 } },
    ],
  });
  assert.deepEqual(parseNftTable(text), [
    {
      name: "nat-qbr0",
      hook: "postrouting",
      rules: [{ comment: "qarax:network:abc", expr: [{ masquerade: null }] }],
    },
    { name: "nat-qbr1", hook: undefined, rules: [] },
  ]);
});
