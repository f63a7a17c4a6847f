import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  commandHelp,
  type CommandSpec,
  groupHelp,
  type GroupSpec,
  parseInput,
  route,
} from "./framework.ts";

const create: CommandSpec = {
  name: "create",
  summary: "Create a VM",
  args: ["name"],
  options: {
    memory: { type: "string", value: "SIZE", help: "guest memory" },
    tag: { type: "string", multiple: true, help: "tag" },
    nat: { type: "boolean", negatable: true, help: "nat" },
    start: { type: "boolean", help: "start it" },
  },
  run: () => Promise.resolve(),
};
const detach: CommandSpec = {
  name: "detach",
  aliases: ["rm"],
  summary: "Detach",
  args: ["vm", "device-id?"],
  run: () => Promise.resolve(),
};
const root: GroupSpec = {
  name: "qarax",
  summary: "root",
  children: [{
    name: "vm",
    aliases: ["vms"],
    summary: "VMs",
    children: [create, { name: "disk", summary: "disks", children: [detach] }],
  }],
};

Deno.test("routing follows command words; global flags may come first", () => {
  const r = route(root, [
    "--url",
    "http://x",
    "-o",
    "json",
    "vms",
    "create",
    "web",
    "--memory",
    "1GiB",
  ]);
  assert.equal(r.node, create);
  assert.deepEqual(r.path, ["vm", "create"]);
  assert.deepEqual(r.rest, ["--url", "http://x", "-o", "json", "web", "--memory", "1GiB"]);
  // A command word after a command is an argument, not a command.
  const d = route(root, ["vm", "disk", "rm", "create", "disk0"]);
  assert.equal(d.node, detach);
  assert.deepEqual(d.rest, ["create", "disk0"]);
  // An unknown word stops routing at its group.
  const u = route(root, ["vm", "crate", "x"]);
  assert.deepEqual([u.path, u.unknown], [["vm"], "crate"]);
  assert.equal(route(root, ["--output=json", "vm"]).path.join(" "), "vm");
});

Deno.test("parseInput: flags anywhere, repeatable and negatable flags, named positionals", () => {
  const input = parseInput(create, [
    "--tag",
    "a",
    "web",
    "--memory=2GiB",
    "-o",
    "json",
    "--tag",
    "b",
    "--no-nat",
  ], "qarax vm create");
  assert.deepEqual(input.args, { name: "web" });
  assert.deepEqual(input.opts, { tag: ["a", "b"], memory: "2GiB", nat: false });
  assert.deepEqual(input.global, { output: "json" });
  assert.deepEqual(parseInput(detach, ["web"], "x").args, { vm: "web", "device-id": undefined });
});

Deno.test("parseInput: usage mistakes are InvalidArgumentErrors that say how to get help", () => {
  const cases: [CommandSpec, string[], RegExp][] = [
    [create, ["web", "--bogus"], /unknown flag '--bogus' \(see `qarax vm create --help`\)/],
    [create, ["web", "--memory"], /flag --memory <value> needs a value/],
    [create, [], /missing <name> \(usage: qarax vm create <name> \[flags\]\)/],
    [create, ["web", "extra"], /unexpected argument "extra"/],
    [create, ["web", "--no-start"], /unknown flag --no-start/],
    [detach, [], /missing <vm>/],
  ];
  for (const [cmd, argv, message] of cases) {
    assert.throws(() => parseInput(cmd, argv, "qarax vm create"), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, argv.join(" "));
      assert.match(err.message, message);
      return true;
    });
  }
  // --help skips argument checks, so `qarax vm create --help` works without a name.
  assert.equal(parseInput(create, ["--help"], "x").global.help, true);
});

Deno.test("help text comes from the same specs", () => {
  const help = commandHelp(create, "qarax vm create");
  assert.match(help, /^Usage: qarax vm create <name> \[flags\]\n\nCreate a VM\n/);
  assert.match(help, /--memory SIZE\s+guest memory/);
  assert.match(help, /--tag VALUE\s+tag \(repeatable\)/);
  assert.match(help, /--\[no-\]nat/);
  assert.match(help, /Global flags:\n.*--url URL/s);
  assert.match(commandHelp(detach, "qarax vm disk detach"), /detach <vm> \[device-id\]/);
  const group = groupHelp(root.children[0] as GroupSpec, "qarax vm");
  assert.match(group, /create\s+Create a VM/);
  assert.match(group, /disk …\s+disks/);
});
