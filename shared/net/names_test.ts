import assert from "node:assert/strict";
import { absolutePath, deviceId, interfaceName, vmId } from "./names.ts";
import { InvalidArgumentError } from "../errors/errors.ts";

Deno.test("interface names: Linux's 15-char limit and a safe alphabet", () => {
  for (const ok of ["br0", "qbr-prod.10", "qt0123abcdn0", "a".repeat(15)]) {
    assert.equal(interfaceName(ok), ok);
  }
  for (const bad of ["", "a".repeat(16), "-br", "br 0", "br/0", "br;rm", "..", "é"]) {
    assert.throws(() => interfaceName(bad, "bridge_name"), InvalidArgumentError, bad);
  }
  try {
    interfaceName("bad name", "bridge_name");
  } catch (e) {
    assert.deepEqual((e as InvalidArgumentError).details[0].field, "bridge_name");
  }
});

Deno.test("ids and paths: no traversal, no shell metacharacters", () => {
  assert.equal(
    vmId("0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10"),
    "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10",
  );
  assert.throws(() => vmId("../etc"), InvalidArgumentError);
  assert.equal(deviceId("disk0"), "disk0");
  assert.throws(() => deviceId("__serial"), InvalidArgumentError);
  for (const ok of ["/", "/var/lib/qarax/pools/p1/disk.qcow2", "/srv/a-b_c+d=e:f,g@h/"]) {
    assert.equal(absolutePath(ok), ok);
  }
  for (const bad of ["rel/x", "/a/../b", "/a/./b", "/a//b", "/a b", "/a;b", "/a\nb", "/a/$(x)"]) {
    assert.throws(() => absolutePath(bad), InvalidArgumentError, JSON.stringify(bad));
  }
});
