/**
 * `/v1/networks`: managed networks (type bridge now; macvtap and vlan reserved), their host
 * attachments (the bridge each host uses), and the addresses IPAM has handed out. Attaching
 * and detaching reach the host's node synchronously when the host is `up` (a refusal answers
 * the node's error and changes nothing); a host that is not up gets the attachment `pending`,
 * applied when it is initialised or comes back.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { formatCidr, isIpv4, parseCidr, parseIpv4 } from "../../shared/net/ip.ts";
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
import { transaction } from "../db/query.ts";
import { applyNetwork, detachNetworkOnNode, talksToNode } from "../nodes/attachments.ts";
import { checkStaticAddress } from "../domain/ipam.ts";
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
import { createResource, deleteResource, getResource, patchResource } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const NetworkType = z.enum(["bridge", "macvtap", "vlan"]);
const NetworkMode = z.enum(["static", "dhcp", "none"]);
const Ipv4 = z.string().refine(isIpv4, "expected an IPv4 address (a.b.c.d)");

export const Network = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  type: NetworkType,
  mode: NetworkMode.openapi({
    description: "static: the guest gets its IPAM address via cloud-init; dhcp: from a DHCP " +
      "server handing out the IPAM reservations; none: no addresses",
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
  type: NetworkType.default("bridge").refine(
    (t) => t === "bridge",
    "only bridge networks are supported in this version (macvtap and vlan are reserved)",
  ),
  mode: NetworkMode.default("static"),
  subnet: z.string().max(18).nullable().optional(),
  gateway: Ipv4.nullable().optional(),
  dns: z.array(Ipv4).max(3).default([]),
  vlan_id: z.int().min(1).max(4094).nullable().optional(),
  mtu: z.int().min(68).max(65535).default(1500),
  nat: z.boolean().default(false),
}).openapi("NewNetwork");

const NetworkPatch = z.strictObject({
  name: Name.optional(),
  description: Description.nullable().optional(),
  gateway: Ipv4.nullable().optional(),
  dns: z.array(Ipv4).max(3).optional(),
  mtu: z.int().min(68).max(65535).optional(),
  nat: z.boolean().optional(),
  status: z.enum(["active", "inactive"]).optional(),
}).openapi("NetworkPatch");

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
  bridge_name: InterfaceName,
  parent_interface: InterfaceName.nullable().optional().openapi({
    description: "Host interface to enslave to the bridge (bridged to the physical network)",
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

/** Checks subnet / gateway / vlan / nat of a network; returns the normalised subnet. */
function checkNetwork(n: {
  mode: string;
  type: string;
  subnet?: string | null;
  gateway?: string | null;
  vlan_id?: number | null;
  nat?: boolean;
}): string | null {
  let subnet: string | null = null;
  if (n.subnet !== undefined && n.subnet !== null) {
    try {
      const net = parseCidr(n.subnet);
      if (net.prefix < 8 || net.prefix > 30) {
        throw InvalidArgumentError.field("subnet", "prefix length must be between /8 and /30");
      }
      subnet = formatCidr(net);
    } catch (err) {
      if (err instanceof InvalidArgumentError && err.details.length) throw err;
      throw InvalidArgumentError.field("subnet", (err as Error).message);
    }
  }
  if (!subnet && n.mode !== "none") {
    throw InvalidArgumentError.field(
      "subnet",
      `required for mode ${n.mode} (only mode none has no subnet)`,
    );
  }
  if (n.gateway) {
    if (!subnet) throw InvalidArgumentError.field("gateway", "needs a subnet");
    checkStaticAddress({ net: parseCidr(subnet) }, n.gateway, "gateway");
  }
  if (n.vlan_id !== undefined && n.vlan_id !== null && n.type !== "vlan") {
    throw InvalidArgumentError.field("vlan_id", "only applies to type vlan");
  }
  if (n.nat && !n.gateway) {
    throw InvalidArgumentError.field("nat", "needs a gateway (the host routes for the network)");
  }
  return subnet;
}

/** The networks router. */
export function networksRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const networkOr404 = async (db: Parameters<typeof networks.get>[0], id: string, lock = false) => {
    const n = await networks.get(db, id, lock);
    if (!n) throw NotFoundError.of("network", id);
    return n;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/networks",
      tags,
      summary: "List networks",
      request: { query: ListQuery },
      responses: { 200: json(ListOf(Network, "NetworkList"), "A page"), ...errors(422) },
    }),
    async (c) => {
      const { limit, cursor, ...f } = c.req.valid("query");
      const db = deps.sql;
      const where = [];
      if (f.name !== undefined) where.push(db`name = ${f.name}`);
      if (f.type !== undefined) where.push(db`type = ${f.type}`);
      if (f.mode !== undefined) where.push(db`mode = ${f.mode}`);
      if (f.status !== undefined) where.push(db`status = ${f.status}`);
      return c.json(await networks.list(db, where, { limit, cursor }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/networks",
      tags,
      summary: "Create a network",
      request: { body: body(NewNetwork) },
      responses: { 201: json(Network, "Created", true), ...errors(400, 409, 422) },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const subnet = checkNetwork(input);
      const row = await createResource(c, deps, {
        resourceType: RT,
        collection: "/v1/networks",
        insert: (tx) => networks.insert(tx, { ...input, subnet }),
        summary: (n) => ({ name: n.name, subnet: n.subnet, mode: n.mode }),
      });
      return c.json(row, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/networks/{id}",
      tags,
      summary: "Get a network",
      request: { params: IdParams },
      responses: { 200: json(Network, "The network", true), ...errors(404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await getResource(c, RT, id, () => networks.get(deps.sql, id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/networks/{id}",
      tags,
      summary: "Update a network (JSON merge patch)",
      description: "Type, mode and subnet are fixed once created.",
      request: { params: IdParams, headers: IfMatchHeaders, body: patchBody(NetworkPatch) },
      responses: { 200: json(Network, "Updated", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = defined(c.req.valid("json"));
      const row = await patchResource(c, deps, {
        resourceType: RT,
        id,
        get: networks.get,
        change: async (tx, cur: NetworkRow) => {
          const gateway = patch.gateway === undefined ? cur.gateway : patch.gateway;
          checkNetwork({ ...cur, gateway, nat: patch.nat ?? cur.nat });
          if (patch.gateway && patch.gateway !== cur.gateway) {
            const holder = await allocationOf(tx, id, patch.gateway);
            if (holder) {
              throw new ConflictError(
                `${patch.gateway} is allocated to vm ${holder.vm_name ?? holder.vm_id}`,
                { details: [{ field: "gateway", message: "address in use" }] },
              );
            }
          }
          return { row: await networks.update(tx, id, patch), fields: Object.keys(patch) };
        },
      });
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/networks/{id}",
      tags,
      summary: "Delete a network",
      description: "Refused (409) while NICs use it or hosts have it attached.",
      request: { params: IdParams, headers: IfMatchHeaders },
      responses: { 204: { description: "Deleted" }, ...errors(404, 409, 412) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return await deleteResource(c, deps, {
        resourceType: RT,
        id,
        get: networks.get,
        guard: async (tx, n) => {
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
    },
  );

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
      summary: "Attach the network to a host through a bridge",
      description: "On an `up` host the node creates the bridge now (`ready`); otherwise the " +
        "attachment is `pending` until the host is initialised or comes back up.",
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
        const att = await attachNetwork(tx, {
          network_id: id,
          host_id: input.host_id,
          bridge_name: input.bridge_name,
          parent_interface: input.parent_interface ?? null,
        });
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
