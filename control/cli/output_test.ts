import assert from "node:assert/strict";
import { detail, fieldText, keyValues, labelsText, table } from "./output.ts";

Deno.test("tables align columns, right-align numbers and show empty cells as -", () => {
  const rows = [
    { name: "web-1", vcpus: 2, host: "hv1" },
    { name: "database", vcpus: 16, host: null },
  ];
  const text = table(rows, [
    { header: "NAME", value: (r) => r.name },
    { header: "VCPUS", value: (r) => r.vcpus, right: true },
    { header: "HOST", value: (r) => r.host },
  ]);
  assert.equal(
    text,
    "NAME      VCPUS  HOST\n" +
      "web-1         2  hv1\n" +
      "database     16  -\n",
  );
});

Deno.test("a control character from the server cannot break a table row", () => {
  const text = table([{ d: "line1\nline2\x1b[31m" }], [{ header: "D", value: (r) => r.d }]);
  assert.equal(text.split("\n").length, 3); // header, one row, trailing newline
  assert.ok(!text.includes("\x1b"));
});

Deno.test("detail shows every field: sizes humanised, lists joined, objects as JSON", () => {
  assert.equal(fieldText("memory_size", 1073741824), "1 GiB (1073741824)");
  assert.equal(fieldText("size_bytes", 512), "512");
  assert.equal(fieldText("boot_vcpus", 2048), "2048");
  assert.equal(fieldText("tags", ["a", "b"]), "a, b");
  assert.equal(fieldText("tags", []), "-");
  assert.equal(fieldText("config", {}), "-");
  assert.equal(fieldText("labels", { zone: "a" }), '{"zone":"a"}');
  assert.equal(
    fieldText("cloud_init_user_data", "#cloud-config\nusers: []\n"),
    "#cloud-config … (3 lines)",
  );
  assert.equal(fieldText("host_id", null), "-");
  assert.equal(
    detail({ id: "x", memory_size: 1048576, host_id: null }),
    "id           x\nmemory_size  1 MiB (1048576)\nhost_id      -\n",
  );
  assert.equal(keyValues([["a", "1"], ["long", ""]]), "a     1\nlong\n");
  assert.equal(labelsText({ zone: "a", rack: "7" }), "zone=a,rack=7");
});
