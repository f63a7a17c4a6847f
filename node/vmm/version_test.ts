import assert from "node:assert/strict";
import { InternalError } from "../../shared/errors/errors.ts";
import { compareSemVer, hasFeature, parseSemVer, versionAtLeast, vmmVersionOf } from "./version.ts";

Deno.test("versions parse from crate versions and git describe strings", () => {
  assert.deepEqual(parseSemVer("54.0.0"), { major: 54, minor: 0, patch: 0 });
  assert.deepEqual(parseSemVer("v53.0-246-gae44c2971"), { major: 53, minor: 0, patch: 0 });
  assert.deepEqual(parseSemVer("v49"), { major: 49, minor: 0, patch: 0 });
  assert.equal(parseSemVer("main"), null);
  assert.ok(compareSemVer({ major: 1, minor: 2, patch: 3 }, { major: 1, minor: 10, patch: 0 }) < 0);
});

Deno.test("a ping becomes a version record; the emulator is recognisable", () => {
  const real = vmmVersionOf({
    build_version: "v53.0-246-gae44c2971",
    version: "54.0.0",
    pid: 42,
    features: ["kvm", "io_uring"],
  });
  assert.deepEqual(real.version, { major: 54, minor: 0, patch: 0 });
  assert.deepEqual(real.release, { major: 53, minor: 0, patch: 0 });
  assert.equal(real.emulated, false);
  assert.equal(real.pid, 42);
  assert.ok(versionAtLeast(real, 54));
  assert.ok(!versionAtLeast(real, 54, 1));
  assert.ok(hasFeature(real, "kvm"));
  const emu = vmmVersionOf({ version: "53.0.0", features: ["kvm", "qarax-emulator"] });
  assert.equal(emu.emulated, true);
  assert.equal(emu.build, "v53.0.0");
  assert.throws(() => vmmVersionOf({ version: "dev" }), InternalError);
});
