/** `qarax boot-source …`, `qarax instance-type …`, `qarax template …`: what VMs are made from. */
import type { Field } from "../fields.ts";
import { GUEST_FIELDS, SIZING_FIELDS } from "./vm_fields.ts";
import type { Context, GroupSpec, Input } from "../framework.ts";
import {
  createCommand,
  deleteCommand,
  getCommand,
  listCommand,
  type ResourceDef,
  updateCommand,
} from "../resource.ts";
import { resolveId } from "../resolve.ts";
import { formatBytes } from "../units.ts";

type Row = { id: string; name: string; [k: string]: unknown };

const BOOT_SOURCE_FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  { flag: "description", path: "description", type: "string", help: "free text", nullable: true },
  {
    flag: "kernel",
    path: "kernel_image_id",
    type: { ref: "object" },
    help: "kernel storage object",
    nullable: true,
  },
  {
    flag: "initrd",
    path: "initrd_image_id",
    type: { ref: "object" },
    help: "initrd storage object",
    nullable: true,
  },
  {
    flag: "params",
    path: "kernel_params",
    type: "string",
    value: "CMDLINE",
    help: "kernel command line",
    nullable: true,
  },
  {
    flag: "firmware",
    path: "firmware_image_id",
    type: { ref: "object" },
    help: "firmware storage object (firmware boot)",
    nullable: true,
  },
  {
    flag: "boot-mode",
    path: "boot_mode",
    type: "string",
    value: "MODE",
    help: "kernel | firmware",
    on: ["filter"],
  },
];

const bootSourceDef: ResourceDef<Row> = {
  kind: "bootSource",
  plural: "boot sources",
  fields: BOOT_SOURCE_FIELDS,
  nameKinds: ["object"],
  columns: (names) => [
    { header: "ID", value: (b) => b.id },
    { header: "NAME", value: (b) => b.name },
    { header: "MODE", value: (b) => b.boot_mode as string },
    { header: "KERNEL", value: (b) => names.of("object", b.kernel_image_id as string | null) },
    { header: "INITRD", value: (b) => names.of("object", b.initrd_image_id as string | null) },
    { header: "FIRMWARE", value: (b) => names.of("object", b.firmware_image_id as string | null) },
    { header: "PARAMS", value: (b) => b.kernel_params as string | null },
  ],
};

/** The `boot-source` group. */
export const bootSourceGroup: GroupSpec = {
  name: "boot-source",
  aliases: ["boot-sources"],
  summary: "Boot sources: a kernel (+ initrd, command line) or a firmware",
  children: [
    listCommand(bootSourceDef),
    getCommand(bootSourceDef),
    createCommand(bootSourceDef, {
      notes:
        'Example:\n  qarax boot-source create linux --kernel vmlinux --params "console=ttyS0 root=/dev/vda1"',
    }),
    updateCommand(bootSourceDef),
    deleteCommand(bootSourceDef),
  ],
};

const instanceTypeDef: ResourceDef<Row> = {
  kind: "instanceType",
  plural: "instance types",
  fields: SIZING_FIELDS.map((f) =>
    f.flag === "vcpus" || f.flag === "memory" ? { ...f, required: true } : f
  ),
  columns: () => [
    { header: "ID", value: (t) => t.id },
    { header: "NAME", value: (t) => t.name },
    { header: "VCPUS", value: (t) => t.boot_vcpus as number, right: true },
    { header: "MAX", value: (t) => t.max_vcpus as number | null, right: true },
    { header: "MEMORY", value: (t) => formatBytes(t.memory_size as number), right: true },
    { header: "ARCH", value: (t) => t.architecture as string | null },
  ],
};

/** The `instance-type` group. */
export const instanceTypeGroup: GroupSpec = {
  name: "instance-type",
  aliases: ["instance-types"],
  summary: "Instance types: named VM sizes",
  children: [
    listCommand(instanceTypeDef),
    getCommand(instanceTypeDef),
    createCommand(instanceTypeDef, {
      notes: "Example:\n  qarax instance-type create small --vcpus 1 --memory 1GiB",
    }),
    updateCommand(instanceTypeDef),
    deleteCommand(instanceTypeDef),
  ],
};

const TEMPLATE_FIELDS: Field[] = [...SIZING_FIELDS, ...GUEST_FIELDS];

const templateDef: ResourceDef<Row> = {
  kind: "template",
  plural: "vm templates",
  fields: TEMPLATE_FIELDS,
  nameKinds: ["bootSource"],
  columns: (names) => [
    { header: "ID", value: (t) => t.id },
    { header: "NAME", value: (t) => t.name },
    { header: "VCPUS", value: (t) => t.boot_vcpus as number | null, right: true },
    { header: "MEMORY", value: (t) => formatBytes(t.memory_size as number | null), right: true },
    {
      header: "BOOT-SOURCE",
      value: (t) => names.of("bootSource", t.boot_source_id as string | null),
    },
    { header: "NICS", value: (t) => (t.nics as unknown[]).length, right: true },
    { header: "TAGS", value: (t) => (t.tags as string[]).join(",") },
  ],
};

const NETWORK_OPTION = {
  network: {
    type: "string" as const,
    multiple: true,
    value: "NETWORK",
    help: "a NIC on this network for each VM (replaces the list on update)",
  },
};

async function templateNics(
  ctx: Context,
  input: Input,
  body: Record<string, unknown>,
): Promise<void> {
  const nets = input.opts.network as string[] | undefined;
  if (!nets?.length) return;
  const client = await ctx.client();
  body.nics = await Promise.all(
    nets.map(async (n) => ({ network_id: await resolveId(client, "network", n) })),
  );
}

/** The `template` group. */
export const templateGroup: GroupSpec = {
  name: "template",
  aliases: ["templates", "vm-template"],
  summary: "VM templates: defaults a VM starts from",
  children: [
    listCommand(templateDef),
    getCommand(templateDef),
    createCommand(templateDef, {
      options: NETWORK_OPTION,
      fieldFlags: { nics: "--network" },
      build: templateNics,
      notes:
        "Example:\n  qarax template create web --vcpus 2 --memory 2GiB --boot-source linux --network lan --tag web",
    }),
    updateCommand(templateDef, {
      options: NETWORK_OPTION,
      fieldFlags: { nics: "--network" },
      build: templateNics,
    }),
    deleteCommand(templateDef),
  ],
};
