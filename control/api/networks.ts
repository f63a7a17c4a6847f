/**
 * `/v1/networks`: managed networks (types bridge, vlan and macvtap; modes static, dhcp and
 * none, see domain/networks.ts), their host attachments (the bridge and parent interface each
 * host uses), and the addresses IPAM has handed out. Attaching and detaching reach the host's
 * node synchronously when the host is `up` (a refusal answers the node's error and changes
 * nothing); a host that is not up gets the attachment `pending`, applied when it is
 * initialised or comes back. A changed network is applied again on every attached host that
 * is up, after the change committed; a host that refuses has its attachment marked `failed`.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { isIpv4, parseCidr, parseIpv4 } from "../../shared/net/ip.ts";
import { interfaceName } from "../../shared/net/names.ts";
import { getHost } from "../db/hosts.ts";
import {
  attachNetwork,
  detachNetwork,
  getNetworkAttachment,
  listNetworkAttachments,
  vmsUsingNetworkOnHost,
} from "../db/host_networks.ts";
import { allocationOf, listAllocations } from "../db/ip_allocations.ts";
import { type NetworkRow, networks, networkUsage } from "../db/networks.ts";
import { equalTo, transaction } from "../db/query.ts";
import {
  applyNetwork,
  detachNetworkOnNode,
  reapplyNetwork,
  talksToNode,
} from "../nodes/attachments.ts";
import {
  attachmentProblem,
  checkNetwork,
  NETWORK_MODES,
  NETWORK_TYPES,
} from "../domain/networks.ts";
import { audit } from "./audit.ts";
import {
  body,
  defined,
  Description,
  errors,
  ForceQuery,
  Id,
  IdParams,
  IfMatchHeaders,
  json,
  ListOf,
  Name,
  PageQuery,
  patchBody,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import { deleteRoute, getRoute, listRoute, patchResource, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const NetworkType = z.enum(NETWORK_TYPES).openapi({
  description: "bridge: a Linux bridge on each host (isolated, NATed with `nat`, or bridged " +
    "to the host interface an attachment names as `parent_interface`); vlan: a bridge whose " +
    "uplink is VLAN `vlan_id` on each attachment's `parent_interface`; macvtap: no bridge, " +
    "each NIC is a macvtap device on each attachment's `parent_interface`",
});
const NetworkMode = z.enum(NETWORK_MODES);
/** MTUs a NIC can have (the node refuses NICs below the IPv6 minimum). */
const Mtu = z.int().min(1280).max(65535);
const Ipv4 = z.string().refine(isIpv4, "expected an IPv4 address (a.b.c.d)");

export const Network = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  type: NetworkType,
  mode: NetworkMode.openapi({
    description: "static: the guest gets its IPAM address via cloud-init network-config; " +
      "dhcp: from a DHCP server on each host's bridge that hands out only the IPAM " +
      "reservations (bridge and vlan networks); none: no subnet, no addresses",
  }),
  subnet: z.string().nullable().openapi({ example: "10.10.0.0/24" }),
  gateway: z.string().nullable(),
  dns: z.array(z.string()),
  vlan_id: z.int().nullable(),
  mtu: z.int(),
  nat: z.boolean(),
  status: z.enum(["active", "inactive"]),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("Network");

const NewNetwork = z.strictObject({
  name: Name,
  description: Description.nullable().optional(),
  type: NetworkType.default("bridge"),
  mode: NetworkMode.default("static"),
  subnet: z.string().max(18).nullable().optional(),
  gateway: Ipv4.nullable().optional(),
  dns: z.array(Ipv4).max(3).default([]),
  vlan_id: z.int().min(1).max(4094).nullable().optional().openapi({
    description: "Required for type vlan, refused otherwise",
  }),
  mtu: Mtu.default(1500).openapi({
    description: "Bridge and NIC MTU (also handed out by DHCP); macvtap NICs keep their " +
      "parent's unless the NIC sets its own",
  }),
  nat: z.boolean().default(false).openapi({
    description: "Masquerade the subnet towards each host's default route (bridge networks " +
      "with a gateway, attached without a parent_interface)",
  }),
}).openapi("NewNetwork");

const NetworkPatch = z.strictObject({
  name: Name.optional(),
  description: Description.nullable().optional(),
  mode: z.enum(["static", "dhcp"]).optional().openapi({
    description: "Between static and dhcp only (mode none has no IPAM)",
  }),
  gateway: Ipv4.nullable().optional(),
  dns: z.array(Ipv4).max(3).optional(),
  vlan_id: z.int().min(1).max(4094).optional(),
  mtu: Mtu.optional(),
  nat: z.boolean().optional(),
  status: z.enum(["active", "inactive"]).optional(),
}).openapi("NetworkPatch");

/** Fields whose change the hosts must apply (AttachNetwork again). */
const NODE_FIELDS = ["mode", "gateway", "dns", "vlan_id", "mtu", "nat"] as const;

const Attachment = z.object({
  network_id: Id,
  host_id: Id,
  bridge_name: z.string(),
  parent_interface: z.string().nullable(),
  status: z.enum(["pending", "ready", "failed"]),
  status_reason: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("NetworkAttachment");

const InterfaceName = z.string().max(15).refine((n) => {
  try {
    interfaceName(n);
    return true;
  } catch {
    return false;
  }
}, "must be a Linux interface name (1-15 of A-Z a-z 0-9 _ . -, starting with a letter or digit)");

const AttachBody = z.strictObject({
  host_id: Id,
  bridge_name: InterfaceName.optional().openapi({
    description: "The bridge on the host (required for bridge and vlan networks); for a " +
      "macvtap network only the attachment's key, `qxmv` + 8 hex of the network id by default",
  }),
  parent_interface: InterfaceName.nullable().optional().openapi({
    description: "bridge: a host interface the bridge takes over (bridged uplink; not with " +
      "nat); vlan (required): the interface carrying the VLAN; macvtap (required): the " +
      "interface the NICs' macvtap devices sit on",
  }),
}).openapi("AttachNetwork");

const IpAllocation = z.object({
  ip_address: z.string(),
  network_id: Id,
  vm_id: Id.nullable(),
  nic_id: Id.nullable(),
  device_id: z.string().nullable(),
  allocated_at: Timestamp,
}).openapi("IpAllocation");

const HostParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  host_id: Id.openapi({ param: { name: "host_id", in: "path" } }),
});

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  type: NetworkType.optional(),
  mode: NetworkMode.optional(),
  status: z.enum(["active", "inactive"]).optional(),
});

const tags = ["networks"];
const RT = "network";

/** The networks router. */
export function networksRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const networkOr404 = async (db: Parameters<typeof networks.get>[0], id: string, lock = false) => {
    const n = await networks.get(db, id, lock);
    if (!n) throw NotFoundError.of("network", id);
    return n;
  };

  listRoute(app, deps, {
    path: "/networks",
    tags,
    summary: "List networks",
    item: Network,
    listName: "NetworkList",
    query: ListQuery,
    list: (db, f, page) => networks.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/networks",
    tags,
    summary: "Create a network",
    body: NewNetwork,
    schema: Network,
    resourceType: RT,
    insert: (tx, input) => networks.insert(tx, { ...input, subnet: checkNetwork(input) }),
    auditSummary: (n) => ({ name: n.name, subnet: n.subnet, mode: n.mode }),
  });

  getRoute(app, deps, {
    path: "/networks/{id}",
    tags,
    summary: "Get a network",
    schema: Network,
    found: "The network",
    resourceType: RT,
    get: networks.get,
  });

  app.openapi(
    createRoute({
      method: "patch",
      path: "/networks/{id}",
      tags,
      summary: "Update a network (JSON merge patch)",
      description: "Type and subnet are fixed once created; mode changes only between static " +
        "and dhcp. A change hosts must apply (mode, gateway, dns, vlan_id, mtu, nat) is " +
        "refused (422 naming the field) when an attachment could not take it (e.g. nat on a " +
        "network attached with a parent_interface); otherwise it is committed and then " +
        "applied on every attached host that is up before the response. A host whose node " +
        "refuses has its attachment `failed` with the node's message (and a " +
        "`network.sync_failed` event); hosts that are down get it when they come back.",
      request: { params: IdParams, headers: IfMatchHeaders, body: patchBody(NetworkPatch) },
      responses: { 200: json(Network, "Updated", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = defined(c.req.valid("json"));
      let reapply = false;
      const row = await patchResource(c, deps, {
        resourceType: RT,
        id,
        get: networks.get,
        change: async (tx, cur: NetworkRow) => {
          if (patch.mode !== undefined && patch.mode !== cur.mode && cur.mode === "none") {
            throw InvalidArgumentError.field(
              "mode",
              "a network in mode none has no subnet or addresses; create a new network instead",
            );
          }
          const merged = { ...cur, ...patch } as NetworkRow;
          checkNetwork(merged);
          for (const att of await listNetworkAttachments(tx, id)) {
            const problem = attachmentProblem(merged, att);
            if (!problem) continue;
            const host = await getHost(tx, att.host_id);
            const field = problem.networkFields.find((f) => f in patch) ??
              problem.networkFields[0] ?? problem.field;
            throw InvalidArgumentError.field(
              field,
              `host ${host?.name ?? att.host_id} has the network attached (bridge ` +
                `${att.bridge_name}${
                  att.parent_interface ? `, parent ${att.parent_interface}` : ""
                }): ${problem.message}`,
            );
          }
          if (patch.gateway && patch.gateway !== cur.gateway) {
            const holder = await allocationOf(tx, id, patch.gateway);
            if (holder) {
              throw new ConflictError(
                `${patch.gateway} is allocated to vm ${holder.vm_name ?? holder.vm_id}`,
                { details: [{ field: "gateway", message: "address in use" }] },
              );
            }
          }
          reapply = NODE_FIELDS.some((f) =>
            f in patch && JSON.stringify(patch[f]) !== JSON.stringify(cur[f])
          );
          return { row: await networks.update(tx, id, patch), fields: Object.keys(patch) };
        },
      });
      if (reapply) await reapplyNetwork(deps, id);
      return c.json(row, 200);
    },
  );

  deleteRoute(app, deps, {
    path: "/networks/{id}",
    tags,
    summary: "Delete a network",
    description: "Refused (409) while NICs use it or hosts have it attached.",
    resourceType: RT,
    get: networks.get,
    guard: async (tx, n, id) => {
      const use = await networkUsage(tx, id);
      if (use.nics > 0) {
        throw new FailedPreconditionError(`network ${n.name} is used by ${use.nics} NIC(s)`);
      }
      if (use.hosts > 0) {
        throw new FailedPreconditionError(
          `network ${n.name} is attached to ${use.hosts} host(s); detach it first`,
        );
      }
    },
    remove: networks.remove,
  });

  // ---- host attachments ----

  app.openapi(
    createRoute({
      method: "get",
      path: "/networks/{id}/hosts",
      tags,
      summary: "Hosts the network is attached to",
      request: { params: IdParams },
      responses: {
        200: json(ListOf(Attachment, "NetworkAttachmentList"), "All attachments"),
        ...errors(404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await networkOr404(deps.sql, id);
      const items = (await listNetworkAttachments(deps.sql, id)).map(({ version: _, ...r }) => r);
      return c.json({ items, next_cursor: null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/networks/{id}/hosts",
      tags,
      summary: "Attach the network to a host (its bridge, uplink, NAT and DHCP server)",
      description: "On an `up` host the node builds it now (`ready`; a refusal is the node's " +
        "error and records nothing); otherwise the attachment is `pending` until the host is " +
        "initialised or comes back up. vlan and macvtap networks need a `parent_interface`; " +
        "a NATed network takes none.",
      request: { params: IdParams, body: body(AttachBody) },
      responses: { 201: json(Attachment, "Attached", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const { n, host, att } = await transaction(deps.sql, async (tx) => {
        const n = await networkOr404(tx, id, true);
        const host = await getHost(tx, input.host_id);
        if (!host) throw InvalidArgumentError.field("host_id", `host ${input.host_id} not found`);
        const bridge_name = input.bridge_name ??
          (n.type === "macvtap" ? `qxmv${id.replaceAll("-", "").slice(0, 8)}` : undefined);
        if (!bridge_name) {
          throw InvalidArgumentError.field("bridge_name", `required for ${n.type} networks`);
        }
        const wanted = { bridge_name, parent_interface: input.parent_interface ?? null };
        const problem = attachmentProblem(n, wanted);
        if (problem) throw InvalidArgumentError.field(problem.field, problem.message);
        const att = await attachNetwork(tx, { network_id: id, host_id: input.host_id, ...wanted });
        return { n, host, att };
      });
      let row = att;
      if (talksToNode(host.status)) {
        try {
          row = (await applyNetwork(deps, host, id)) ?? att;
        } catch (err) {
          await detachNetwork(deps.sql, id, host.id);
          throw err;
        }
      }
      await transaction(deps.sql, (tx) =>
        audit(tx, c, {
          action: "attach_host",
          resource_type: RT,
          resource_id: id,
          summary: {
            name: n.name,
            host_id: host.id,
            host: host.name,
            bridge_name: att.bridge_name,
            parent_interface: att.parent_interface,
            status: row.status,
          },
        }));
      c.header("Location", `/v1/networks/${id}/hosts/${input.host_id}`);
      return c.json(withEtag(c, row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/networks/{id}/hosts/{host_id}",
      tags,
      summary: "One attachment",
      request: { params: HostParams },
      responses: { 200: json(Attachment, "The attachment", true), ...errors(404) },
    }),
    async (c) => {
      const { id, host_id } = c.req.valid("param");
      const row = await getNetworkAttachment(deps.sql, id, host_id);
      if (!row) throw new NotFoundError(`network ${id} is not attached to host ${host_id}`);
      return c.json(withEtag(c, row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/networks/{id}/hosts/{host_id}",
      tags,
      summary: "Detach the network from a host",
      description: "Refused (409) while VMs placed on the host have NICs on the network. The " +
        "node removes the bridge first; a `down` host refuses (409) unless " +
        "`force=true`, which only forgets the attachment.",
      request: { params: HostParams, query: ForceQuery },
      responses: { 204: { description: "Detached" }, ...errors(404, 409) },
    }),
    async (c) => {
      const { id, host_id } = c.req.valid("param");
      const force = c.req.valid("query").force === "true";
      // Checks, then the node (outside any transaction), then the record.
      const check = async (tx: Parameters<typeof networks.get>[0]) => {
        const n = await networkOr404(tx, id, true);
        const users = await vmsUsingNetworkOnHost(tx, id, host_id);
        if (users.length) {
          throw new FailedPreconditionError(
            `network ${n.name} is in use on that host by vm(s) ${users.join(", ")}`,
          );
        }
        const att = await getNetworkAttachment(tx, id, host_id);
        if (!att) throw new NotFoundError(`network ${id} is not attached to host ${host_id}`);
        return { n, att, host: await getHost(tx, host_id) };
      };
      const { n, att, host } = await check(deps.sql);
      // A pending attachment never reached the node: there is nothing to undo there.
      if (host && att.status !== "pending" && talksToNode(host.status)) {
        await detachNetworkOnNode(deps, host, n, att);
      } else if (host && att.status !== "pending" && host.status === "down" && !force) {
        throw new FailedPreconditionError(
          `host ${host.name} is ${host.status}: its node cannot remove bridge ` +
            `${att.bridge_name} now; retry when it is up, or pass force=true to forget the ` +
            "attachment anyway",
        );
      }
      await transaction(deps.sql, async (tx) => {
        await check(tx);
        await detachNetwork(tx, id, host_id);
        await audit(tx, c, {
          action: "detach_host",
          resource_type: RT,
          resource_id: id,
          summary: { name: n.name, host_id, bridge_name: att.bridge_name },
        });
      });
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/networks/{id}/ips",
      tags,
      summary: "Addresses allocated on the network (address order)",
      request: { params: IdParams, query: z.object(PageQuery) },
      responses: {
        200: json(ListOf(IpAllocation, "IpAllocationList"), "A page"),
        ...errors(404, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const page = c.req.valid("query");
      await networkOr404(deps.sql, id);
      return c.json(await listAllocations(deps.sql, id, page), 200);
    },
  );

  return app;
}

/** The IPAM view of a network row (undefined for mode none). */
export function ipamOf(n: NetworkRow) {
  if (n.mode === "none" || !n.subnet) return undefined;
  return {
    net: parseCidr(n.subnet),
    gateway: n.gateway ? parseIpv4(n.gateway) : undefined,
  };
}
