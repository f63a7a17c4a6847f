import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { ApiClient } from "./client.ts";
import { bodyFromFlags, type Field, fieldOptions, flagsOf, parseLabels } from "./fields.ts";
import { parseSpec } from "./commands/vms.ts";

const FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "", on: ["update"] },
  { flag: "memory", path: "memory_size", type: "size", help: "", required: true },
  { flag: "vcpus", path: "boot_vcpus", type: "int", help: "" },
  { flag: "description", path: "description", type: "string", help: "", nullable: true },
  { flag: "tag", path: "tags", type: "strings", help: "" },
  { flag: "require-host-label", path: "placement.required_host_labels", type: "labels", help: "" },
  { flag: "reservation-class", path: "placement.reservation_class", type: "string", help: "" },
  {
    flag: "boot-source",
    path: "boot_source_id",
    type: { ref: "bootSource" },
    help: "",
    nullable: true,
  },
  { flag: "status", path: "status", type: "string", help: "", on: ["filter"] },
];

const BOOT_ID = "44444444-4444-4444-8444-444444444444";
const client = () =>
  Promise.resolve(
    new ApiClient("http://api.test", undefined, () =>
      Promise.resolve(
        new Response(
          JSON.stringify({ items: [{ id: BOOT_ID, name: "linux" }], next_cursor: null }),
          {
            headers: { "content-type": "application/json" },
          },
        ),
      )),
  );

Deno.test("create bodies: typed values, nested paths, resolved names, required flags", async () => {
  const body = await bodyFromFlags(
    FIELDS,
    {
      memory: "1GiB",
      vcpus: "2",
      tag: ["a", "b"],
      "require-host-label": ["zone=a", "gpu=x=y"],
      "reservation-class": "batch",
      "boot-source": "linux",
      status: "running", // a filter: not part of a create body
    },
    "create",
    client,
  );
  assert.deepEqual(body, {
    memory_size: 1073741824,
    boot_vcpus: 2,
    tags: ["a", "b"],
    placement: { required_host_labels: { zone: "a", gpu: "x=y" }, reservation_class: "batch" },
    boot_source_id: BOOT_ID,
  });
  await assert.rejects(bodyFromFlags(FIELDS, {}, "create", client), /--memory: is required/);
  await assert.rejects(
    bodyFromFlags(FIELDS, { memory: "1GiB", vcpus: "two" }, "create", client),
    /--vcpus: expected a whole number, got "two"/,
  );
});

Deno.test("update patches hold only the given flags; empty clears nullable fields", async () => {
  assert.deepEqual(await bodyFromFlags(FIELDS, { name: "web-2" }, "update", client), {
    name: "web-2",
  });
  assert.deepEqual(
    await bodyFromFlags(FIELDS, { description: "", "boot-source": "" }, "update", client),
    { description: null, boot_source_id: null },
  );
  assert.deepEqual(
    await bodyFromFlags(FIELDS, { "require-host-label": ["zone-", "rack=7"] }, "update", client),
    { placement: { required_host_labels: { zone: null, rack: "7" } } },
  );
  assert.deepEqual(await bodyFromFlags(FIELDS, { status: "running" }, "filter", client), {
    status: "running",
  });
});

Deno.test("labels need KEY=VALUE; removal (KEY-) only on update", () => {
  assert.deepEqual(parseLabels(["a=1", "b="], "label", false), { a: "1", b: "" });
  assert.throws(() => parseLabels(["zone-"], "label", false), InvalidArgumentError);
  assert.throws(() => parseLabels(["=x"], "label", true), /expected KEY=VALUE or KEY-/);
});

Deno.test("field flags become options (with help) and map API errors back", () => {
  const create = fieldOptions(FIELDS, "create");
  assert.equal(create.name, undefined);
  assert.deepEqual(create.memory, { type: "string", value: "SIZE", help: " (required)" });
  assert.equal(create.tag.multiple, true);
  assert.equal(fieldOptions(FIELDS, "update")["require-host-label"].help, "; KEY- removes");
  assert.equal(flagsOf(FIELDS)["placement.reservation_class"], "--reservation-class");
});

Deno.test("--disk / --network specs: a name plus known options", () => {
  assert.deepEqual(parseSpec("root,boot=1,ro", "disk", ["boot", "ro", "device"]), {
    head: "root",
    opts: { boot: "1", ro: true },
  });
  assert.throws(() => parseSpec("lan,vlan=3", "network", ["ip"]), /unknown option "vlan"/);
  assert.throws(() => parseSpec(",ip=1.2.3.4", "network", ["ip"]), /missing the name/);
});
