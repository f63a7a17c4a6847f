import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { ambiguousHost, objectHost, type ObjectHostInput } from "./object_host.ts";

const local = { name: "p", type: "local" };
const a = { host_id: "ha", host_name: "a" };
const b = { host_id: "hb", host_name: "b" };

function decide(over: Partial<ObjectHostInput>) {
  return objectHost({ pool: local, attached: [a, b], requested: undefined, ...over });
}

function refused(over: Partial<ObjectHostInput>, why: RegExp) {
  assert.throws(() => decide(over), (e) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.deepEqual(e.details?.map((d) => d.field), ["host_id"]);
    assert.match(e.message, why);
    return true;
  });
}

Deno.test("object host: local pools default to the only host, the parent's, or nothing", () => {
  assert.equal(decide({ attached: [a] }), "ha");
  assert.equal(decide({ attached: [] }), null);
  assert.equal(decide({}), undefined);
  assert.equal(decide({ parent: { name: "base", host_id: "hb" } }), "hb");
  assert.equal(decide({ parent: { name: "base", host_id: null } }), undefined);
  assert.equal(decide({ requested: "hb" }), "hb");
  assert.equal(decide({ requested: null }), null);
});

Deno.test("object host: a host without the pool, or away from the parent, is refused", () => {
  refused(
    { requested: "hc" },
    /host hc does not have storage pool p attached \(attached to: a, b\)/,
  );
  refused(
    { requested: "ha", parent: { name: "base", host_id: "hb" } },
    /must be host b, where base \(its backing file\) lives/,
  );
  refused(
    { requested: null, parent: { name: "base", host_id: "hb" } },
    /cannot be null: its backing file base lives on host b only/,
  );
});

Deno.test("object host: shared pools have none", () => {
  const nfs = { name: "n", type: "nfs" };
  assert.equal(decide({ pool: nfs }), null);
  assert.equal(decide({ pool: nfs, requested: null }), null);
  refused({ pool: nfs, requested: "ha" }, /storage pool n is nfs .*omit host_id/);
});

Deno.test("object host: the ambiguity error names the hosts", () => {
  const e = ambiguousHost(local, [a, b]);
  assert.deepEqual(e.details?.map((d) => d.field), ["host_id"]);
  assert.match(e.message, /required: storage pool p is local and attached to 2 hosts \(a, b\)/);
});
