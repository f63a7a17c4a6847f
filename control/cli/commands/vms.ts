/**
 * `qarax vm …`: create, inspect and drive VMs, their disks (`vm disk`), NICs (`vm nic`),
 * snapshots (`vm snapshot`, `vm restore`), serial console (`vm console`, `vm attach`) and
 * templates made from a VM (`vm template`).
 */
import { FailedPreconditionError, InvalidArgumentError } from "../../../shared/errors/errors.ts";
import { attachConsole, processConsoleIo } from "../console.ts";
import type { ApiClient, Query } from "../client.ts";
import type { Field } from "../fields.ts";
import { GUEST_FIELDS, SIZING_FIELDS } from "./vm_fields.ts";
import { parseInteger } from "../fields.ts";
import type { CommandSpec, Context, GroupSpec, Input, OptionSpec } from "../framework.ts";
import { type Column, table } from "../output.ts";
import {
  ACTION_OPTIONS,
  createCommand,
  deleteCommand,
  getCommand,
  listCommand,
  type ResourceDef,
  runAction,
  subListCommand,
  updateCommand,
} from "../resource.ts";
import { isId, Names, resolveId } from "../resolve.ts";
import { formatAge, formatBytes, parseDuration, parseSize } from "../units.ts";

interface Vm {
  id: string;
  name: string;
  status: string;
  host_id: string | null;
  boot_vcpus: number;
  memory_size: number;
  tags: string[];
  created_at: string;
  [k: string]: unknown;
}

interface Disk {
  device_id: string;
  storage_object_id: string;
  boot_order: number | null;
  read_only: boolean;
  [k: string]: unknown;
}

interface Nic {
  device_id: string;
  network_id: string;
  mac_address: string;
  ip_address: string | null;
  mtu: number | null;
  [k: string]: unknown;
}

const FIELDS: Field[] = [
  ...SIZING_FIELDS,
  {
    flag: "instance-type",
    path: "instance_type_id",
    type: { ref: "instanceType" },
    help: "sizing from an instance type",
    on: ["create"],
  },
  {
    flag: "template",
    path: "vm_template_id",
    type: { ref: "template" },
    help: "defaults from a VM template",
    on: ["create"],
  },
  ...GUEST_FIELDS,
  {
    flag: "reservation-class",
    path: "placement.reservation_class",
    type: "string",
    value: "CLASS",
    help: "place only on hosts of this reservation class",
    nullable: true,
  },
  {
    flag: "require-host-label",
    path: "placement.required_host_labels",
    type: "labels",
    help: "place only on hosts with this label",
  },
  {
    flag: "prefer-host-label",
    path: "placement.preferred_host_labels",
    type: "labels",
    help: "prefer hosts with this label",
  },
  {
    flag: "affinity-tag",
    path: "placement.affinity_tags",
    type: "strings",
    value: "TAG",
    help: "place near VMs with this tag",
  },
  {
    flag: "anti-affinity-tag",
    path: "placement.anti_affinity_tags",
    type: "strings",
    value: "TAG",
    help: "keep away from VMs with this tag",
  },
  {
    flag: "spread-tag",
    path: "placement.spread_tags",
    type: "strings",
    value: "TAG",
    help: "spread VMs with this tag across hosts",
  },
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "filter by status",
    on: ["filter"],
  },
  { flag: "host", path: "host_id", type: { ref: "host" }, help: "filter by host", on: ["filter"] },
  {
    flag: "tag",
    path: "tag",
    type: "strings",
    value: "TAG",
    help: "filter by tag",
    on: ["filter"],
  },
];

/** `NAME[,key=value][,flag]` → head and options (for `--disk` and `--network`). */
export function parseSpec(text: string, flag: string, keys: string[]): {
  head: string;
  opts: Record<string, string | true>;
} {
  const [head, ...parts] = text.split(",");
  if (!head) throw InvalidArgumentError.field(`--${flag}`, `missing the name in "${text}"`);
  const opts: Record<string, string | true> = {};
  for (const p of parts) {
    const eq = p.indexOf("=");
    const key = eq === -1 ? p : p.slice(0, eq);
    if (!keys.includes(key)) {
      throw InvalidArgumentError.field(
        `--${flag}`,
        `unknown option "${key}" in "${text}" (known: ${keys.join(", ")})`,
      );
    }
    opts[key] = eq === -1 ? true : p.slice(eq + 1);
  }
  return { head, opts };
}

async function diskBody(client: ApiClient, text: string): Promise<Record<string, unknown>> {
  const { head, opts } = parseSpec(text, "disk", ["boot", "ro", "device"]);
  return {
    storage_object_id: await resolveId(client, "object", head),
    ...(opts.boot !== undefined
      ? { boot_order: opts.boot === true ? 0 : parseInteger(opts.boot, "disk boot") }
      : {}),
    ...(opts.ro ? { read_only: true } : {}),
    ...(typeof opts.device === "string" ? { device_id: opts.device } : {}),
  };
}

async function nicBody(client: ApiClient, text: string): Promise<Record<string, unknown>> {
  const { head, opts } = parseSpec(text, "network", ["ip", "mac", "mtu", "device"]);
  return {
    network_id: await resolveId(client, "network", head),
    ...(typeof opts.ip === "string" ? { ip_address: opts.ip } : {}),
    ...(typeof opts.mac === "string" ? { mac_address: opts.mac } : {}),
    ...(typeof opts.mtu === "string" ? { mtu: parseInteger(opts.mtu, "network mtu") } : {}),
    ...(typeof opts.device === "string" ? { device_id: opts.device } : {}),
  };
}

function diskColumns(names: Names): Column<Disk>[] {
  return [
    { header: "DEVICE", value: (d) => d.device_id },
    { header: "OBJECT", value: (d) => names.of("object", d.storage_object_id) },
    { header: "BOOT", value: (d) => d.boot_order, right: true },
    { header: "READ-ONLY", value: (d) => (d.read_only ? "yes" : "no") },
  ];
}

function nicColumns(names: Names): Column<Nic>[] {
  return [
    { header: "DEVICE", value: (n) => n.device_id },
    { header: "NETWORK", value: (n) => names.of("network", n.network_id) },
    { header: "MAC", value: (n) => n.mac_address },
    { header: "IP", value: (n) => n.ip_address },
    { header: "MTU", value: (n) => n.mtu, right: true },
  ];
}

interface Snapshot {
  id: string;
  name: string;
  status: string;
  status_reason: string | null;
  host_id: string | null;
  created_at: string;
  [k: string]: unknown;
}

function snapshotColumns(names: Names): Column<Snapshot>[] {
  return [
    { header: "NAME", value: (s) => s.name },
    { header: "STATUS", value: (s) => s.status },
    { header: "HOST", value: (s) => (s.host_id ? names.of("host", s.host_id) : null) },
    { header: "AGE", value: (s) => formatAge(s.created_at, new Date()) },
    { header: "ID", value: (s) => s.id },
    { header: "REASON", value: (s) => s.status_reason },
  ];
}

/** The id of VM `vmId`'s snapshot named (or with id) `ref`. */
async function snapshotIdOf(client: ApiClient, vmId: string, ref: string): Promise<string> {
  if (isId(ref)) return ref;
  const page = await client.list<Snapshot>(`/v1/vms/${vmId}/snapshots`, { name: ref });
  const [snap] = page.items;
  if (!snap) throw InvalidArgumentError.field("snapshot", `no snapshot named ${ref} on this VM`);
  return snap.id;
}

const snapshotGroup: GroupSpec = {
  name: "snapshot",
  aliases: ["snapshots"],
  summary: "A VM's snapshots (restore one with `qarax vm restore`)",
  children: [
    {
      name: "create",
      summary: "Snapshot a running or paused VM (paused around it, then resumed)",
      args: ["vm"],
      options: {
        name: { type: "string", value: "NAME", help: "unique per VM (default snapshot-<hex>)" },
        pool: {
          type: "string",
          value: "NAME|ID",
          help: "pool to hold it, attached to the VM's host (default: its first disk's pool)",
        },
        ...ACTION_OPTIONS,
      },
      fieldFlags: { name: "--name", storage_pool_id: "--pool" },
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "vm", input.args.vm!);
        const name = input.opts.name as string | undefined;
        const pool = input.opts.pool as string | undefined;
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/vms/${id}/snapshots`,
          body: {
            ...(name !== undefined ? { name } : {}),
            ...(pool !== undefined
              ? { storage_pool_id: await resolveId(client, "pool", pool) }
              : {}),
          },
          done: `vm ${input.args.vm} snapshotted`,
        });
      },
    },
    subListCommand<Snapshot>({
      name: "list",
      aliases: ["ls"],
      summary: "List a VM's snapshots",
      parent: "vm",
      arg: "vm",
      path: (id) => `/v1/vms/${id}/snapshots`,
      view: { plural: "snapshots", columns: snapshotColumns, nameKinds: ["host"] },
    }),
    {
      name: "delete",
      aliases: ["rm", "remove"],
      summary: "Delete a snapshot and its files on its host",
      args: ["vm", "snapshot"],
      options: {
        force: {
          type: "boolean",
          help: "delete the records even when the node cannot remove the files (they stay)",
        },
        ...ACTION_OPTIONS,
      },
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "vm", input.args.vm!);
        const snap = await snapshotIdOf(client, id, input.args.snapshot!);
        return await runAction(ctx, input, {
          method: "DELETE",
          path: `/v1/vms/${id}/snapshots/${snap}`,
          query: input.opts.force ? { force: "true" } : undefined,
          done: `snapshot ${input.args.snapshot} of vm ${input.args.vm} deleted`,
        });
      },
    },
  ],
};

const restoreCommand: CommandSpec = {
  name: "restore",
  summary: "Restore a stopped VM from one of its snapshots (it ends running)",
  args: ["vm"],
  options: {
    snapshot: { type: "string", value: "NAME|ID", help: "the snapshot (required)" },
    ...ACTION_OPTIONS,
  },
  fieldFlags: { snapshot_id: "--snapshot" },
  async run(ctx, input) {
    const ref = input.opts.snapshot as string | undefined;
    if (!ref) throw InvalidArgumentError.field("snapshot", "--snapshot NAME|ID is required");
    const client = await ctx.client();
    const id = await resolveId(client, "vm", input.args.vm!);
    return await runAction(ctx, input, {
      method: "POST",
      path: `/v1/vms/${id}/restore`,
      body: { snapshot_id: await snapshotIdOf(client, id, ref) },
      done: `vm ${input.args.vm} restored from ${ref}`,
    });
  },
};

const def: ResourceDef<Vm> = {
  kind: "vm",
  plural: "vms",
  fields: FIELDS,
  nameKinds: ["host"],
  columns: (names) => [
    { header: "ID", value: (v) => v.id },
    { header: "NAME", value: (v) => v.name },
    { header: "STATUS", value: (v) => v.status },
    { header: "HOST", value: (v) => names.of("host", v.host_id) },
    { header: "VCPUS", value: (v) => v.boot_vcpus, right: true },
    { header: "MEMORY", value: (v) => formatBytes(v.memory_size), right: true },
    { header: "TAGS", value: (v) => v.tags.join(",") },
    { header: "AGE", value: (v) => formatAge(v.created_at, new Date()) },
  ],
  async more(client, vm) {
    const [disks, nics, names] = await Promise.all([
      client.list<Disk>(`/v1/vms/${vm.id}/disks`),
      client.list<Nic>(`/v1/vms/${vm.id}/nics`),
      new Names(client).load("object", "network"),
    ]);
    const parts = [""];
    parts.push(
      disks.items.length
        ? `Disks:\n${indent(table(disks.items, diskColumns(names)))}`
        : "Disks: none\n",
    );
    parts.push(
      nics.items.length ? `NICs:\n${indent(table(nics.items, nicColumns(names)))}` : "NICs: none\n",
    );
    return parts.join("\n");
  },
};

function indent(text: string): string {
  return text.split("\n").map((l) => (l ? `  ${l}` : l)).join("\n");
}

/** The lifecycle actions: `POST /v1/vms/{id}/<action>` → 202 + job. */
const ACTIONS: [string, string, string][] = [
  ["start", "Start a VM (places it on a host when needed)", "started"],
  ["stop", "Shut a VM down gracefully (ACPI power button)", "stopped"],
  ["force-stop", "Stop a VM immediately (like pulling the plug)", "force-stopped"],
  ["pause", "Pause a running VM", "paused"],
  ["resume", "Resume a paused VM", "resumed"],
  ["reboot", "Reboot a running VM", "rebooted"],
];

/** `vm stop --grace`: how long the guest gets to power off before a hard stop. */
const GRACE_OPTION: Record<string, OptionSpec> = {
  grace: {
    type: "string",
    value: "DURATION",
    help: "how long the guest gets to power off before a hard stop (default: the server's)",
  },
};

function actionCommand([name, summary, past]: [string, string, string]): CommandSpec {
  const stop = name === "stop";
  return {
    name,
    summary,
    args: ["vm"],
    options: stop ? { ...GRACE_OPTION, ...ACTION_OPTIONS } : ACTION_OPTIONS,
    run: (ctx, input) => {
      const grace = input.opts.grace as string | undefined;
      const query = grace === undefined
        ? undefined
        : { timeout: Math.round(parseDuration(grace, "--grace") / 1000) };
      return vmAction(ctx, input, input.args.vm!, name, past, query);
    },
  };
}

async function vmAction(
  ctx: Context,
  input: Input,
  ref: string,
  action: string,
  past: string,
  query?: Query,
): Promise<number> {
  const id = await resolveId(await ctx.client(), "vm", ref);
  return await runAction(ctx, input, {
    method: "POST",
    path: `/v1/vms/${id}/${action}`,
    query,
    done: `vm ${ref} ${past}`,
  });
}

/** `vm resize`: hotplug when running (a job), new boot sizes when stopped (at once). */
const resizeCommand: CommandSpec = {
  name: "resize",
  summary: "Change a VM's vCPUs and/or memory (hotplug when running)",
  args: ["vm"],
  options: {
    vcpus: { type: "string", value: "N", help: "vCPUs, from 1 to the VM's max vCPUs" },
    memory: {
      type: "string",
      value: "SIZE",
      help: "memory, e.g. 2GiB (running: grows only, by 128 MiB steps, up to the hotplug room)",
    },
    ...ACTION_OPTIONS,
  },
  // The job's capacity refusal names the placement filter (vcpus, memory).
  fieldFlags: {
    desired_vcpus: "--vcpus",
    desired_ram: "--memory",
    vcpus: "--vcpus",
    memory: "--memory",
  },
  notes: `A running VM is resized by a job (use --wait to follow it); a stopped VM gets new
boot sizes at once, applied at its next start. Example:
  qarax vm resize web-1 --vcpus 4 --memory 4GiB --wait`,
  async run(ctx, input) {
    const body: Record<string, number> = {};
    if (input.opts.vcpus !== undefined) {
      body.desired_vcpus = parseInteger(input.opts.vcpus as string, "vcpus");
    }
    if (input.opts.memory !== undefined) {
      body.desired_ram = parseSize(input.opts.memory as string, "--memory");
    }
    if (!Object.keys(body).length) {
      throw new InvalidArgumentError("give --vcpus and/or --memory");
    }
    const id = await resolveId(await ctx.client(), "vm", input.args.vm!);
    return await runAction(ctx, input, {
      method: "POST",
      path: `/v1/vms/${id}/resize`,
      body,
      done: (vm) =>
        `vm ${input.args.vm} resized` +
        (vm.boot_vcpus !== undefined
          ? ` (${vm.boot_vcpus} vCPU, ${formatBytes(vm.memory_size as number)})`
          : ""),
    });
  },
};

/** `vm template`: a VM template with the VM's reusable fields. */
const templateCommand: CommandSpec = {
  name: "template",
  summary: "Create a VM template from a VM (its sizing, boot, cloud-init, placement, NICs, …)",
  args: ["vm"],
  options: {
    name: { type: "string", value: "NAME", help: "the template's name (required)" },
    description: { type: "string", value: "TEXT", help: "the template's description" },
  },
  fieldFlags: { name: "--name", description: "--description" },
  notes: `Disks, addresses and MACs are not copied. Example:
  qarax vm template web-1 --name web
  qarax vm create web-2 --template web --disk web-2-root,boot=1`,
  async run(ctx, input) {
    const name = input.opts.name as string | undefined;
    if (!name) throw InvalidArgumentError.field("name", "--name NAME is required");
    const description = input.opts.description as string | undefined;
    const id = await resolveId(await ctx.client(), "vm", input.args.vm!);
    return await runAction(ctx, input, {
      method: "POST",
      path: `/v1/vms/${id}/template`,
      body: { name, ...(description !== undefined ? { description } : {}) },
      done: (t) => `template ${t.name} created from vm ${input.args.vm} (id ${t.id})`,
    });
  },
};

/** `vm console`: the serial log tail. */
const consoleCommand: CommandSpec = {
  name: "console",
  summary: "Print the VM's serial console log (the newest 64 KiB)",
  args: ["vm"],
  notes: `For VMs created with --console log (the default). Example:
  qarax vm console web-1`,
  async run(ctx, input) {
    const client = await ctx.client();
    const id = await resolveId(client, "vm", input.args.vm!);
    const res = await client.send("GET", `/v1/vms/${id}/console`, {
      headers: { accept: "text/plain" },
    });
    const text = await res.text();
    ctx.io.out(text.endsWith("\n") || !text ? text : text + "\n");
  },
};

/** `vm attach`: an interactive session on the serial console. */
const attachCommand: CommandSpec = {
  name: "attach",
  summary: "Attach to the VM's serial console (Ctrl-] detaches)",
  args: ["vm"],
  notes: `For VMs created with --console socket. With a terminal, keys go to the guest as
typed and Ctrl-] detaches; with piped stdin, the input is sent and the session ends shortly
after stdin does. Terminal resize is not passed on. Example:
  qarax vm create web-1 --console socket --boot-source linux --start --wait
  qarax vm attach web-1`,
  async run(ctx, input) {
    const client = await ctx.client();
    const id = await resolveId(client, "vm", input.args.vm!);
    // A refused upgrade shows no reason through a WebSocket; check what would refuse it first.
    const vm = await client.get<Vm>(`/v1/vms/${id}`);
    if (vm.console !== "socket") {
      throw new FailedPreconditionError(
        `vm ${vm.name} has no interactive console (console is "${vm.console}"): read its log ` +
          `with qarax vm console ${vm.name}, or set --console socket (qarax vm update) while it ` +
          "is shut down and start it again",
      );
    }
    if (!vm.host_id) {
      throw new FailedPreconditionError(
        `vm ${vm.name} is not created on any host (start it first)`,
      );
    }
    const result = await attachConsole(
      client,
      `/v1/vms/${id}/console/attach`,
      processConsoleIo(),
      ctx.signal,
    );
    if (result.error) throw new FailedPreconditionError(result.error);
  },
};

const diskGroup: GroupSpec = {
  name: "disk",
  aliases: ["disks"],
  summary: "A VM's disks",
  children: [
    subListCommand<Disk>({
      name: "list",
      aliases: ["ls"],
      summary: "List a VM's disks",
      parent: "vm",
      arg: "vm",
      path: (id) => `/v1/vms/${id}/disks`,
      view: { plural: "disks", columns: diskColumns, nameKinds: ["object"] },
    }),
    {
      name: "attach",
      summary: "Attach a storage object (disk or iso) to a VM",
      args: ["vm", "object"],
      options: {
        "device-id": {
          type: "string",
          value: "ID",
          help: "device id (default: the lowest free diskN)",
        },
        "boot-order": { type: "string", value: "N", help: "boot order (lowest boots first)" },
        "read-only": { type: "boolean", help: "attach read-only" },
        ...ACTION_OPTIONS,
      },
      fieldFlags: {
        storage_object_id: "<object>",
        device_id: "--device-id",
        boot_order: "--boot-order",
      },
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "vm", input.args.vm!);
        const body = {
          storage_object_id: await resolveId(client, "object", input.args.object!),
          ...(input.opts["device-id"] !== undefined ? { device_id: input.opts["device-id"] } : {}),
          ...(input.opts["boot-order"] !== undefined
            ? { boot_order: parseInteger(input.opts["boot-order"] as string, "boot-order") }
            : {}),
          ...(input.opts["read-only"] ? { read_only: true } : {}),
        };
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/vms/${id}/disks`,
          body,
          done: (d) => `disk ${d.device_id ?? input.args.object} attached to vm ${input.args.vm}`,
        });
      },
    },
    {
      name: "resize",
      summary: "Grow a VM's disk (the guest sees it at once when the VM runs)",
      args: ["vm", "device-id"],
      options: {
        size: { type: "string", value: "SIZE", help: "the new size, e.g. 20GiB (grow only)" },
        ...ACTION_OPTIONS,
      },
      fieldFlags: { size_bytes: "--size" },
      async run(ctx, input) {
        if (input.opts.size === undefined) throw InvalidArgumentError.field("size", "is required");
        const id = await resolveId(await ctx.client(), "vm", input.args.vm!);
        const device = input.args["device-id"]!;
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/vms/${id}/disks/${encodeURIComponent(device)}/resize`,
          body: { size_bytes: parseSize(input.opts.size as string, "--size") },
          done: `disk ${device} of vm ${input.args.vm} resized to ${input.opts.size}`,
        });
      },
    },
    {
      name: "detach",
      aliases: ["remove", "rm"],
      summary: "Detach a disk from a VM (the storage object stays)",
      args: ["vm", "device-id"],
      options: ACTION_OPTIONS,
      async run(ctx, input) {
        const id = await resolveId(await ctx.client(), "vm", input.args.vm!);
        return await runAction(ctx, input, {
          method: "DELETE",
          path: `/v1/vms/${id}/disks/${encodeURIComponent(input.args["device-id"]!)}`,
          done: `disk ${input.args["device-id"]} detached from vm ${input.args.vm}`,
        });
      },
    },
  ],
};

const nicGroup: GroupSpec = {
  name: "nic",
  aliases: ["nics"],
  summary: "A VM's network interfaces",
  children: [
    subListCommand<Nic>({
      name: "list",
      aliases: ["ls"],
      summary: "List a VM's NICs",
      parent: "vm",
      arg: "vm",
      path: (id) => `/v1/vms/${id}/nics`,
      view: { plural: "nics", columns: nicColumns, nameKinds: ["network"] },
    }),
    {
      name: "add",
      summary: "Add a NIC on a network (the address comes from the network's IPAM)",
      args: ["vm", "network"],
      options: {
        ip: {
          type: "string",
          value: "ADDRESS",
          help: "static address (default: the next free one)",
        },
        mac: {
          type: "string",
          value: "MAC",
          help: "MAC address (default: a stable generated one)",
        },
        mtu: { type: "string", value: "N", help: "MTU" },
        "device-id": {
          type: "string",
          value: "ID",
          help: "device id (default: the lowest free netN)",
        },
        ...ACTION_OPTIONS,
      },
      fieldFlags: {
        network_id: "<network>",
        ip_address: "--ip",
        mac_address: "--mac",
        mtu: "--mtu",
        device_id: "--device-id",
      },
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "vm", input.args.vm!);
        const o = input.opts;
        const body = {
          network_id: await resolveId(client, "network", input.args.network!),
          ...(o.ip !== undefined ? { ip_address: o.ip } : {}),
          ...(o.mac !== undefined ? { mac_address: o.mac } : {}),
          ...(o.mtu !== undefined ? { mtu: parseInteger(o.mtu as string, "mtu") } : {}),
          ...(o["device-id"] !== undefined ? { device_id: o["device-id"] } : {}),
        };
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/vms/${id}/nics`,
          body,
          done: (n) =>
            `nic ${n.device_id ?? ""} added to vm ${input.args.vm}${
              n.ip_address ? ` (${n.ip_address})` : ""
            }`,
        });
      },
    },
    {
      name: "remove",
      aliases: ["rm", "delete"],
      summary: "Remove a NIC from a VM (its address is released)",
      args: ["vm", "device-id"],
      options: ACTION_OPTIONS,
      async run(ctx, input) {
        const id = await resolveId(await ctx.client(), "vm", input.args.vm!);
        return await runAction(ctx, input, {
          method: "DELETE",
          path: `/v1/vms/${id}/nics/${encodeURIComponent(input.args["device-id"]!)}`,
          done: `nic ${input.args["device-id"]} removed from vm ${input.args.vm}`,
        });
      },
    },
  ],
};

/** The `vm` group. */
export const vmGroup: GroupSpec = {
  name: "vm",
  aliases: ["vms"],
  summary: "Virtual machines",
  children: [
    listCommand(def),
    getCommand(def),
    createCommand(def, {
      options: {
        disk: {
          type: "string",
          multiple: true,
          value: "OBJECT[,boot=N][,ro][,device=ID]",
          help: "attach a storage object (name or id)",
        },
        network: {
          type: "string",
          multiple: true,
          value: "NETWORK[,ip=A.B.C.D][,mac=M][,mtu=N][,device=ID]",
          help: "add a NIC on a network",
        },
        start: { type: "boolean", help: "start the VM once created" },
        ...ACTION_OPTIONS,
      },
      fieldFlags: { disks: "--disk", nics: "--network" },
      notes: `Fields come from the flags, else the instance type, else the template, else the
server's defaults. Example:
  qarax vm create web-1 --vcpus 2 --memory 1GiB --disk web-1-root,boot=1 --network lan --start --wait`,
      async build(ctx, input, body) {
        if (input.opts.wait && !input.opts.start) {
          throw new InvalidArgumentError("--wait on create needs --start (creating is immediate)");
        }
        const client = await ctx.client();
        const disks = (input.opts.disk as string[] | undefined) ?? [];
        const nets = (input.opts.network as string[] | undefined) ?? [];
        if (disks.length) body.disks = await Promise.all(disks.map((d) => diskBody(client, d)));
        if (nets.length) body.nics = await Promise.all(nets.map((n) => nicBody(client, n)));
      },
      async after(ctx, input, vm) {
        if (input.opts.start) return await vmAction(ctx, input, vm.name, "start", "started");
      },
    }),
    updateCommand(def),
    ...ACTIONS.map(actionCommand),
    resizeCommand,
    templateCommand,
    consoleCommand,
    attachCommand,
    deleteCommand(def, {
      options: {
        force: {
          type: "boolean",
          help:
            "delete the record even when the VM's node cannot be reached (its VMM may be left running)",
        },
      },
      query: (input) => (input.opts.force ? { force: "true" } : {}),
    }),
    diskGroup,
    nicGroup,
    snapshotGroup,
    restoreCommand,
  ],
};
