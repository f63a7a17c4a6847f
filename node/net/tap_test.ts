import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { INTERFACE_NAME } from "../../shared/net/names.ts";
import {
  isMacvtapName,
  isTapName,
  macvtapName,
  nicDeviceIndex,
  parseTapAlias,
  tapAlias,
  tapName,
  tapQueues,
  vmTag,
} from "./tap.ts";

Deno.test("tap names: qt + first 8 hex of a random UUID + n + index, 15 chars at most", () => {
  const id = "0F8C3A52-5d1e-4c3b-9b1e-0c9f3f1d2a10";
  assert.equal(tapName(id, 0), "qt0f8c3a52n0");
  assert.equal(tapName(id, 9999), "qt0f8c3a52n9999");
  assert.equal(tapName(id, 9999).length, 15);
  assert.ok(INTERFACE_NAME.test(tapName(id, 9999)));
  assert.ok(isTapName(tapName(id, 12)));
  assert.ok(!isTapName("qbr0") && !isTapName("qt0f8c3a52n"));
});

Deno.test("ids that are not random UUIDs get 8 hex digits from a hash", () => {
  for (const id of ["vm-1", "web.example", "a"]) {
    assert.match(vmTag(id), /^[0-9a-f]{8}$/);
    assert.equal(vmTag(id), vmTag(id), "deterministic");
  }
  assert.notEqual(vmTag("vm-1"), vmTag("vm-2"));
  // UUIDv7 ids made in the same minute share their first 8 hex: they must not share taps.
  const a = "01936f1e-8a2b-7c3d-9e4f-0123456789ab";
  const b = "01936f1e-9f00-7aaa-8bbb-fedcba987654";
  assert.notEqual(tapName(a, 0), tapName(b, 0));
  assert.notEqual(vmTag(a), "01936f1e");
});

Deno.test("bad VM ids and NIC indexes are refused before any name is built", () => {
  for (const bad of ["", "../x", "a b", "a;b", "x".repeat(65)]) {
    assert.throws(() => tapName(bad, 0), InvalidArgumentError, bad);
  }
  for (const bad of [-1, 10000, 1.5, NaN]) {
    assert.throws(() => tapName("vm-1", bad), InvalidArgumentError, String(bad));
  }
});

Deno.test("the tap alias records the owner and reads back", () => {
  const alias = tapAlias("0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10", 3);
  assert.equal(alias, "qarax:vm:0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10:3");
  assert.deepEqual(parseTapAlias(alias), {
    vmId: "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10",
    index: 3,
  });
  assert.equal(parseTapAlias("qarax:network:x"), undefined);
  assert.equal(parseTapAlias(undefined), undefined);
});

Deno.test("queue counts follow Cloud Hypervisor: RX+TX, even; more than one pair is multi-queue", () => {
  assert.deepEqual(tapQueues(2), { pairs: 1, multiQueue: false });
  assert.deepEqual(tapQueues(8), { pairs: 4, multiQueue: true });
  for (const bad of [0, 1, 3, 258, 2.5]) {
    assert.throws(() => tapQueues(bad), InvalidArgumentError, String(bad));
  }
});

Deno.test("macvtap names follow the tap scheme with qm; indexes read back from both", () => {
  const id = "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10";
  assert.equal(macvtapName(id, 3), "qm0f8c3a52n3");
  assert.equal(macvtapName(id, 9999).length, 15);
  assert.ok(isMacvtapName(macvtapName(id, 0)) && !isTapName(macvtapName(id, 0)));
  assert.equal(nicDeviceIndex(macvtapName(id, 42)), 42);
  assert.equal(nicDeviceIndex(tapName(id, 7)), 7);
  assert.equal(nicDeviceIndex("eth0"), undefined);
});
