/** `qarax host …`: register, inspect, initialise, deploy, maintain and remove hypervisor hosts. */
import type { Field } from "../fields.ts";
import { bodyFromFlags, fieldOptions, flagsOf } from "../fields.ts";
import type { GroupSpec } from "../framework.ts";
import { detail, labelsText } from "../output.ts";
import {
  ACTION_OPTIONS,
  createCommand,
  deleteCommand,
  getCommand,
  listCommand,
  type ResourceDef,
  runAction,
  updateCommand,
} from "../resource.ts";
import { resolveId } from "../resolve.ts";
import { formatAge, formatBytes } from "../units.ts";

interface Host {
  id: string;
  name: string;
  address: string;
  port: number;
  status: string;
  architecture: string | null;
  total_cpus: number | null;
  total_memory_bytes: number | null;
  node_version: string | null;
  labels: Record<string, string>;
  created_at: string;
  [k: string]: unknown;
}

const FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  {
    flag: "address",
    path: "address",
    type: "string",
    value: "HOST",
    help: "IP address or DNS name of the node",
    required: true,
  },
  {
    flag: "port",
    path: "port",
    type: "int",
    value: "PORT",
    help: "gRPC port of qarax-node (default 50051)",
  },
  { flag: "label", path: "labels", type: "labels", help: "placement label" },
  {
    flag: "reservation-class",
    path: "reservation_class",
    type: "string",
    value: "CLASS",
    help: "only VMs asking for this class land here",
    nullable: true,
    on: ["create", "update", "filter"],
  },
  {
    flag: "architecture",
    path: "architecture",
    type: "string",
    value: "ARCH",
    help: "x86_64 | aarch64 (init reports it)",
    on: ["create", "filter"],
  },
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "down | installing | installation_failed | up | maintenance | …",
    on: ["filter"],
  },
];

const def: ResourceDef<Host> = {
  kind: "host",
  plural: "hosts",
  fields: FIELDS,
  columns: () => [
    { header: "ID", value: (h) => h.id },
    { header: "NAME", value: (h) => h.name },
    { header: "ADDRESS", value: (h) => `${h.address}:${h.port}` },
    { header: "STATUS", value: (h) => h.status },
    { header: "ARCH", value: (h) => h.architecture },
    { header: "CPUS", value: (h) => h.total_cpus, right: true },
    { header: "MEMORY", value: (h) => formatBytes(h.total_memory_bytes), right: true },
    { header: "NODE", value: (h) => h.node_version },
    { header: "LABELS", value: (h) => labelsText(h.labels) },
    { header: "AGE", value: (h) => formatAge(h.created_at, new Date()) },
  ],
};

const DEPLOY_FIELDS: Field[] = [
  {
    flag: "image",
    path: "image",
    type: "string",
    value: "IMAGE",
    help: "bootc image to switch to (bootc mode), e.g. registry.example/qarax-host:0.1.0",
  },
  { flag: "mode", path: "mode", type: "string", value: "MODE", help: "bootc (default) | binary" },
  {
    flag: "ssh-user",
    path: "ssh_user",
    type: "string",
    value: "USER",
    help: "SSH user (default root)",
  },
  { flag: "ssh-port", path: "ssh_port", type: "int", value: "PORT", help: "SSH port (default 22)" },
  {
    flag: "ssh-key",
    path: "ssh_key_ref",
    type: "string",
    value: "REF",
    help: "private key reference, env://NAME or file:///path (read by the server)",
  },
  {
    flag: "binary",
    path: "binary_path",
    type: "string",
    value: "PATH",
    help: "binary mode: qarax-node binary or .js bundle, a file on the control plane host",
  },
  {
    flag: "timeout",
    path: "timeout_s",
    type: "int",
    value: "SECONDS",
    help: "wait this long for the reboot and the node (default 900)",
  },
];

/** The `host` group. */
export const hostGroup: GroupSpec = {
  name: "host",
  aliases: ["hosts"],
  summary: "Hypervisor hosts running qarax-node",
  notes: `A new host is registered with \`host add\` (status down), then \`host init\` connects to
its node and marks it up. \`host deploy\` installs the node over SSH first (bootc image or
binary).`,
  children: [
    listCommand(def),
    getCommand(def),
    createCommand(def, {
      name: "add",
      aliases: ["create"],
      verb: "added",
      summary: "Register a host (then run `host init`)",
      notes: "Example:\n  qarax host add hv1 --address 10.0.0.11 --label zone=a",
    }),
    updateCommand(def),
    {
      name: "init",
      summary: "Connect to the host's node, record its facts and mark it up",
      args: ["host"],
      options: ACTION_OPTIONS,
      async run(ctx, input) {
        const id = await resolveId(await ctx.client(), "host", input.args.host!);
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/hosts/${id}/init`,
          done: (b) => {
            const host = (b.host ?? b) as Partial<Host>;
            return `host ${input.args.host} initialised${host.status ? `: ${host.status}` : ""}${
              host.total_cpus ? `, ${host.total_cpus} CPUs` : ""
            }${host.total_memory_bytes ? `, ${formatBytes(host.total_memory_bytes)}` : ""}`;
          },
        });
      },
    },
    {
      name: "deploy",
      summary: "Install qarax-node on the host over SSH (bootc switch or binary copy), then init",
      args: ["host"],
      options: { ...fieldOptions(DEPLOY_FIELDS, "create"), ...ACTION_OPTIONS },
      fieldFlags: flagsOf(DEPLOY_FIELDS),
      notes: `Credentials are references the control plane resolves when the job runs; they are
never stored in clear. The SSH user is root or has passwordless sudo; the host's SSH key is
trusted on first use and pinned by the control plane. Examples:
  qarax host deploy hv1 --image registry.example/qarax-host:0.1.0 --ssh-key file:///etc/qarax/id_ed25519 --wait
  qarax host deploy hv1 --mode binary --binary /srv/build/qarax-node.js --ssh-key env://QARAX_SSH_KEY --wait`,
      async run(ctx, input) {
        const body = await bodyFromFlags(DEPLOY_FIELDS, input.opts, "create", ctx.client);
        const id = await resolveId(await ctx.client(), "host", input.args.host!);
        return await runAction(ctx, input, {
          method: "POST",
          path: `/v1/hosts/${id}/deploy`,
          body,
          done: `host ${input.args.host} deployed`,
        });
      },
    },
    {
      name: "maintenance",
      summary: "Take a host out of scheduling, or return it",
      children: [
        {
          name: "enter",
          summary: "Put the host in maintenance (no new VMs are placed on it)",
          args: ["host"],
          run: (ctx, input) => setStatus(ctx, input.args.host!, "maintenance"),
        },
        {
          name: "exit",
          summary: "Return the host from maintenance to up",
          args: ["host"],
          run: (ctx, input) => setStatus(ctx, input.args.host!, "up"),
        },
      ],
    },
    {
      name: "resources",
      summary: "Show the host's capacity and what its VMs use",
      args: ["host"],
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "host", input.args.host!);
        const res = await client.get<Record<string, unknown>>(`/v1/hosts/${id}/resources`);
        ctx.print(res, () => detail(res));
      },
    },
    deleteCommand(def, { name: "remove", aliases: ["delete", "rm"], summary: "Unregister a host" }),
  ],
};

async function setStatus(
  ctx: import("../framework.ts").Context,
  ref: string,
  status: "maintenance" | "up",
): Promise<void> {
  const client = await ctx.client();
  const id = await resolveId(client, "host", ref);
  const { body } = await client.request<Host>("PATCH", `/v1/hosts/${id}`, {
    body: { status },
    headers: { "content-type": "application/merge-patch+json" },
  });
  ctx.print(body, () => `host ${body.name} is ${body.status}\n`);
}
