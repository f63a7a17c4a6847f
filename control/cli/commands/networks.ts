/** `qarax network …`: networks, their attachments to hosts (bridges) and their IP allocations. */
import type { Field } from "../fields.ts";
import type { GroupSpec } from "../framework.ts";
import {
  createCommand,
  deleteCommand,
  getCommand,
  hostAttachmentCommands,
  listCommand,
  type ResourceDef,
  subListCommand,
  updateCommand,
} from "../resource.ts";

interface Network {
  id: string;
  name: string;
  type: string;
  mode: string;
  subnet: string | null;
  gateway: string | null;
  vlan_id: number | null;
  mtu: number;
  nat: boolean;
  status: string;
  [k: string]: unknown;
}

interface Attachment {
  host_id: string;
  bridge_name: string;
  parent_interface: string | null;
  status: string;
  status_reason: string | null;
}

interface Allocation {
  ip_address: string;
  vm_id: string | null;
  device_id: string | null;
  allocated_at: string;
}

const FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  { flag: "description", path: "description", type: "string", help: "free text", nullable: true },
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "bridge (default) | macvtap | vlan",
    on: ["create", "filter"],
  },
  {
    flag: "mode",
    path: "mode",
    type: "string",
    value: "MODE",
    help: "static (IPAM) | dhcp (IPAM served by DHCP) | none; update: static ↔ dhcp",
    on: ["create", "update", "filter"],
  },
  {
    flag: "subnet",
    path: "subnet",
    type: "string",
    value: "CIDR",
    help: "e.g. 10.10.0.0/24",
    on: ["create"],
  },
  {
    flag: "gateway",
    path: "gateway",
    type: "string",
    value: "IP",
    help: "gateway address",
    nullable: true,
  },
  { flag: "dns", path: "dns", type: "strings", value: "IP", help: "DNS server handed to guests" },
  {
    flag: "vlan",
    path: "vlan_id",
    type: "int",
    value: "ID",
    help: "VLAN id (type vlan)",
    on: ["create", "update"],
  },
  { flag: "mtu", path: "mtu", type: "int", help: "MTU" },
  { flag: "nat", path: "nat", type: "bool", help: "masquerade guest traffic to the outside" },
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "active | inactive",
    on: ["update", "filter"],
  },
];

const def: ResourceDef<Network> = {
  kind: "network",
  plural: "networks",
  fields: FIELDS,
  columns: () => [
    { header: "ID", value: (n) => n.id },
    { header: "NAME", value: (n) => n.name },
    { header: "TYPE", value: (n) => n.type + (n.vlan_id !== null ? `:${n.vlan_id}` : "") },
    { header: "MODE", value: (n) => n.mode },
    { header: "SUBNET", value: (n) => n.subnet },
    { header: "GATEWAY", value: (n) => n.gateway },
    { header: "MTU", value: (n) => n.mtu, right: true },
    { header: "NAT", value: (n) => (n.nat ? "yes" : "no") },
    { header: "STATUS", value: (n) => n.status },
  ],
};

/** The `network` group. */
export const networkGroup: GroupSpec = {
  name: "network",
  aliases: ["networks", "net"],
  summary: "Networks, their host bridges and IP allocations",
  children: [
    listCommand(def),
    getCommand(def),
    createCommand(def, {
      notes: "Example:\n  qarax network create lan --subnet 10.10.0.0/24 --gateway 10.10.0.1 --nat",
    }),
    updateCommand(def),
    deleteCommand(def),
    ...hostAttachmentCommands<Attachment>("network", {
      attachSummary: "Attach the network to a host (its node creates the bridge)",
      options: {
        bridge: {
          type: "string",
          value: "NAME",
          help: "bridge interface name on the host (bridge and vlan networks)",
        },
        "parent-interface": {
          type: "string",
          value: "IF",
          help: "host interface: bridged uplink, VLAN parent, or macvtap parent",
        },
      },
      fieldFlags: { bridge_name: "--bridge", parent_interface: "--parent-interface" },
      body: (input) => ({
        bridge_name: input.opts.bridge,
        ...(input.opts["parent-interface"] !== undefined
          ? { parent_interface: input.opts["parent-interface"] }
          : {}),
      }),
      columns: (names) => [
        { header: "HOST", value: (a) => names.of("host", a.host_id) },
        { header: "BRIDGE", value: (a) => a.bridge_name },
        { header: "PARENT", value: (a) => a.parent_interface },
        { header: "STATUS", value: (a) => a.status },
        { header: "REASON", value: (a) => a.status_reason },
      ],
    }),
    subListCommand<Allocation>({
      name: "ips",
      summary: "List the addresses allocated on a network",
      parent: "network",
      arg: "network",
      path: (id) => `/v1/networks/${id}/ips`,
      view: {
        plural: "allocations",
        nameKinds: ["vm"],
        columns: (names) => [
          { header: "ADDRESS", value: (a) => a.ip_address },
          { header: "VM", value: (a) => names.of("vm", a.vm_id) },
          { header: "DEVICE", value: (a) => a.device_id },
          { header: "ALLOCATED", value: (a) => a.allocated_at },
        ],
      },
    }),
  ],
};
