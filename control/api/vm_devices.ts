/**
 * A VM's disks and NICs: the rules for attaching a disk (ready object of an attachable type,
 * exclusive for writable disks, `diskN` ids) and adding a NIC (network, race-free IPAM, a
 * stable MAC, `netN` ids), shared by `POST /v1/vms` and the `/v1/vms/{id}/disks|nics` routes,
 * and changing a NIC's address or MAC. After every NIC change commits, the DHCP reservations
 * of its network are pushed to the hosts (`syncReservations`).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  AlreadyExistsError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { formatCidr } from "../../shared/net/ip.ts";
import { deviceId as checkDeviceId } from "../../shared/net/names.ts";
import {
  allocationOf,
  insertAllocation,
  moveAllocation,
  usedAddresses,
} from "../db/ip_allocations.ts";
import { getHost } from "../db/hosts.ts";
import { networks } from "../db/networks.ts";
import {
  deleteNic,
  getNic,
  insertNic,
  listNics,
  type NicRow,
  updateNic,
} from "../db/network_interfaces.ts";
import { type Db, transaction } from "../db/query.ts";
import { storageObjects } from "../db/storage_objects.ts";
import {
  attachmentsOf,
  deleteDisk,
  type DiskRow,
  getDisk,
  insertDisk,
  listDisks,
} from "../db/vm_disks.ts";
import { type VmRow, vms } from "../db/vms.ts";
import { nextDeviceId } from "../domain/devices.ts";
import { checkStaticAddress, formatAddress, nextFreeAddress, poolSize } from "../domain/ipam.ts";
import { checkRequestedMac, generateMac } from "../domain/mac.ts";
import { assertVmAction } from "../domain/vm_status.ts";
import { audit } from "./audit.ts";
import { syncReservations } from "../nodes/attachments.ts";
import {
  body,
  checkIfMatch,
  defined,
  errors,
  Id,
  IfMatchHeaders,
  json,
  ListOf,
  patchBody,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { ipamOf } from "./networks.ts";

const DeviceId = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$/,
  "1-50 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
);

export const Disk = z.object({
  id: Id,
  vm_id: Id,
  device_id: z.string().openapi({ example: "disk0" }),
  storage_object_id: Id,
  boot_order: z.int().nullable(),
  read_only: z.boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("VmDisk");

export const NewDisk = z.strictObject({
  storage_object_id: Id,
  device_id: DeviceId.optional().openapi({ description: "Default: the lowest free diskN" }),
  boot_order: z.int().min(0).max(255).nullable().optional(),
  read_only: z.boolean().optional().openapi({ description: "Default false (isos are read-only)" }),
}).openapi("NewVmDisk");

export const Nic = z.object({
  id: Id,
  vm_id: Id,
  device_id: z.string().openapi({ example: "net0" }),
  network_id: Id,
  mac_address: z.string().openapi({ example: "52:1f:9a:00:3c:7e" }),
  ip_address: z.string().nullable(),
  mtu: z.int().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("VmNic");

export const NewNic = z.strictObject({
  network_id: Id,
  device_id: DeviceId.optional().openapi({ description: "Default: the lowest free netN" }),
  ip_address: z.string().max(15).optional().openapi({
    description: "A static address to reserve (default: the next free one)",
  }),
  mac_address: z.string().max(17).optional().openapi({
    description: "Default: a stable, locally administered MAC chosen by the control plane",
  }),
  mtu: z.int().min(1280).max(65535).nullable().optional(),
}).openapi("NewVmNic");

export const NicPatch = z.strictObject({
  ip_address: z.string().max(15).optional().openapi({
    description: "Another free address of the NIC's network",
  }),
  mac_address: z.string().max(17).optional(),
  mtu: z.int().min(1280).max(65535).nullable().optional(),
}).openapi("VmNicPatch");

type NewDiskInput = z.infer<typeof NewDisk>;
type NewNicInput = z.infer<typeof NewNic>;

/** Attachable object types; isos are shared read-only, disks belong to one VM. */
const ATTACHABLE = new Set(["disk", "iso"]);

/** Attaches a storage object to `vm` (caller holds the VM row lock). */
export async function attachDisk(
  tx: Db,
  vm: VmRow,
  input: NewDiskInput,
  prefix = "",
): Promise<DiskRow> {
  const f = (name: string) => `${prefix}${name}`;
  const obj = await storageObjects.get(tx, input.storage_object_id, true);
  if (!obj) {
    throw InvalidArgumentError.field(
      f("storage_object_id"),
      `storage object ${input.storage_object_id} not found`,
    );
  }
  if (!ATTACHABLE.has(obj.type)) {
    const hint = obj.type === "image"
      ? "; create a disk from it (POST /v1/storage-pools/{id}/disks with base_object_id)"
      : obj.type === "kernel" || obj.type === "initrd" || obj.type === "firmware"
      ? "; use it through a boot source"
      : "";
    throw InvalidArgumentError.field(
      f("storage_object_id"),
      `storage object ${obj.name} is a ${obj.type}; only disks and isos can be attached${hint}`,
    );
  }
  if (obj.status !== "ready") {
    throw new FailedPreconditionError(`storage object ${obj.name} is ${obj.status}, not ready`, {
      details: [{ field: f("storage_object_id"), message: `is ${obj.status}` }],
    });
  }
  const existing = await listDisks(tx, vm.id);
  if (existing.some((d) => d.storage_object_id === obj.id)) {
    throw new AlreadyExistsError(
      `storage object ${obj.name} is already attached to vm ${vm.name}`,
      {
        details: [{ field: f("storage_object_id"), message: "already attached" }],
      },
    );
  }
  if (obj.type === "disk") {
    const others = await attachmentsOf(tx, obj.id, vm.id);
    if (others.length) {
      throw new FailedPreconditionError(
        `disk ${obj.name} is attached to vm ${others.join(", ")}; a disk belongs to one VM ` +
          "(clone it to reuse it)",
        { details: [{ field: f("storage_object_id"), message: "attached elsewhere" }] },
      );
    }
  }
  if (obj.host_id && vm.host_id && obj.host_id !== vm.host_id) {
    // A local pool's file exists on its host only: the VM could never open it.
    const held = await getHost(tx, obj.host_id);
    const placed = await getHost(tx, vm.host_id);
    throw new FailedPreconditionError(
      `storage object ${obj.name} lives on host ${held?.name ?? obj.host_id} (local pool), ` +
        `but vm ${vm.name} is placed on host ${placed?.name ?? vm.host_id}`,
      { details: [{ field: f("storage_object_id"), message: "on another host" }] },
    );
  }
  const device_id = input.device_id ?? nextDeviceId("disk", existing.map((d) => d.device_id));
  checkDeviceId(device_id, f("device_id"));
  return await insertDisk(tx, {
    vm_id: vm.id,
    device_id,
    storage_object_id: obj.id,
    boot_order: input.boot_order ?? null,
    read_only: obj.type === "iso" ? true : input.read_only ?? false,
  });
}

/** Adds a NIC to `vm` with an address and a MAC (caller holds the VM row lock). */
export async function addNic(tx: Db, vm: VmRow, input: NewNicInput, prefix = ""): Promise<NicRow> {
  const f = (name: string) => `${prefix}${name}`;
  // Locking the network serialises allocations on it; the unique key backs this up.
  const net = await networks.get(tx, input.network_id, true);
  if (!net) {
    throw InvalidArgumentError.field(f("network_id"), `network ${input.network_id} not found`);
  }
  if (net.status !== "active") {
    throw new FailedPreconditionError(`network ${net.name} is ${net.status}`, {
      details: [{ field: f("network_id"), message: `is ${net.status}` }],
    });
  }
  const existing = await listNics(tx, vm.id);
  const device_id = input.device_id ?? nextDeviceId("net", existing.map((n) => n.device_id));
  checkDeviceId(device_id, f("device_id"));
  if (existing.some((n) => n.device_id === device_id)) {
    throw new AlreadyExistsError(`vm ${vm.name} already has a device ${device_id}`, {
      details: [{ field: f("device_id"), message: "already exists" }],
    });
  }
  const ipam = ipamOf(net);
  let ip: string | null = null;
  if (!ipam) {
    if (input.ip_address !== undefined) {
      throw InvalidArgumentError.field(
        f("ip_address"),
        `network ${net.name} has no IPAM (mode none)`,
      );
    }
  } else if (input.ip_address !== undefined) {
    const addr = checkStaticAddress(ipam, input.ip_address, f("ip_address"));
    ip = formatAddress(addr);
    const holder = await allocationOf(tx, net.id, ip);
    if (holder) {
      throw new AlreadyExistsError(
        `${ip} is already allocated on network ${net.name} (vm ${holder.vm_name ?? holder.vm_id})`,
        { details: [{ field: f("ip_address"), message: "already allocated" }] },
      );
    }
  } else {
    const next = nextFreeAddress(ipam, await usedAddresses(tx, net.id));
    if (next === null) {
      throw new ConflictError(
        `network ${net.name} has no free address: all ${poolSize(ipam)} assignable addresses of ` +
          `${formatCidr(ipam.net)} are allocated`,
        { details: [{ field: f("network_id"), message: "no free address" }] },
      );
    }
    ip = formatAddress(next);
  }
  const requestedMac = input.mac_address === undefined
    ? undefined
    : checkRequestedMac(input.mac_address, f("mac_address"));
  const id = crypto.randomUUID();
  let nic: NicRow | undefined;
  // A generated MAC collides with odds of 1 in 2^40; draw again if it does.
  for (let attempt = 0; attempt < 5 && !nic; attempt++) {
    nic = await insertNic(tx, {
      id,
      vm_id: vm.id,
      device_id,
      network_id: net.id,
      mac_address: requestedMac ?? generateMac(),
      ip_address: ip,
      mtu: input.mtu ?? null,
    });
    if (!nic && requestedMac) {
      throw new AlreadyExistsError(`MAC ${requestedMac} is already used by another NIC`, {
        details: [{ field: f("mac_address"), message: "already exists" }],
      });
    }
  }
  if (!nic) throw new ConflictError("could not find a free MAC address; retry");
  if (ip) {
    await insertAllocation(tx, {
      network_id: net.id,
      ip_address: ip,
      vm_id: vm.id,
      nic_id: nic.id,
    });
  }
  return nic;
}

const DeviceParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  device_id: z.string().max(64).openapi({ param: { name: "device_id", in: "path" } }),
});
const VmParams = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });
const tags = ["vms"];

/** Routes of `/v1/vms/{id}/disks` and `/v1/vms/{id}/nics`. */
export function vmDevicesRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const vmOr404 = async (db: Db, id: string, lock = false) => {
    const vm = await vms.get(db, id, lock);
    if (!vm) throw NotFoundError.of("vm", id);
    return vm;
  };

  for (const kind of ["disks", "nics"] as const) {
    const isDisk = kind === "disks";
    const schema = isDisk ? Disk : Nic;
    const noun = isDisk ? "disk" : "NIC";

    app.openapi(
      createRoute({
        method: "get",
        path: `/vms/{id}/${kind}`,
        tags,
        summary: `List a VM's ${isDisk ? "disks" : "NICs"}`,
        request: { params: VmParams },
        responses: {
          200: json(ListOf(schema, isDisk ? "VmDiskList" : "VmNicList"), `All ${kind}`),
          ...errors(404),
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        await vmOr404(deps.sql, id);
        const rows = isDisk ? await listDisks(deps.sql, id) : await listNics(deps.sql, id);
        const items = rows.map(({ version: _, ...r }) => r);
        return c.json({ items, next_cursor: null }, 200);
      },
    );

    app.openapi(
      createRoute({
        method: "get",
        path: `/vms/{id}/${kind}/{device_id}`,
        tags,
        summary: `Get one ${noun} of a VM`,
        request: { params: DeviceParams },
        responses: { 200: json(schema, `The ${noun}`, true), ...errors(404) },
      }),
      async (c) => {
        const { id, device_id } = c.req.valid("param");
        await vmOr404(deps.sql, id);
        const missing = () => new NotFoundError(`vm ${id} has no ${noun} ${device_id}`);
        if (isDisk) {
          const row = await getDisk(deps.sql, id, device_id);
          if (!row) throw missing();
          return c.json(withEtag(c, row), 200);
        }
        const row = await getNic(deps.sql, id, device_id);
        if (!row) throw missing();
        return c.json(withEtag(c, row), 200);
      },
    );

    app.openapi(
      createRoute({
        method: "delete",
        path: `/vms/{id}/${kind}/{device_id}`,
        tags,
        summary: isDisk
          ? "Detach a disk (the storage object stays)"
          : "Remove a NIC (its address is released)",
        request: { params: DeviceParams },
        responses: { 204: { description: "Removed" }, ...errors(404, 409) },
      }),
      async (c) => {
        const { id, device_id } = c.req.valid("param");
        let networkId: string | undefined;
        await transaction(deps.sql, async (tx) => {
          const vm = await vmOr404(tx, id, true);
          assertVmAction(vm, isDisk ? "detach_disk" : "remove_nic");
          if (isDisk) {
            const row = await getDisk(tx, id, device_id);
            if (!row) throw new NotFoundError(`vm ${id} has no ${noun} ${device_id}`);
            await deleteDisk(tx, row.id);
          } else {
            const row = await getNic(tx, id, device_id);
            if (!row) throw new NotFoundError(`vm ${id} has no ${noun} ${device_id}`);
            await deleteNic(tx, row.id);
            networkId = row.network_id;
          }
          await audit(tx, c, {
            action: isDisk ? "detach_disk" : "remove_nic",
            resource_type: "vm",
            resource_id: id,
            summary: { name: vm.name, device_id },
          });
        });
        // The address is free again: no DHCP server may hand it to this MAC any more.
        if (networkId) await syncReservations(deps, [networkId]);
        return c.body(null, 204);
      },
    );
  }

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms/{id}/disks",
      tags,
      summary: "Attach a disk or iso (VM created or shut down)",
      request: { params: VmParams, body: body(NewDisk) },
      responses: { 201: json(Disk, "Attached", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const row = await transaction(deps.sql, async (tx) => {
        const vm = await vmOr404(tx, id, true);
        assertVmAction(vm, "attach_disk");
        const disk = await attachDisk(tx, vm, input);
        await audit(tx, c, {
          action: "attach_disk",
          resource_type: "vm",
          resource_id: id,
          summary: {
            name: vm.name,
            device_id: disk.device_id,
            storage_object_id: disk.storage_object_id,
          },
        });
        return disk;
      });
      c.header("Location", `/v1/vms/${id}/disks/${row.device_id}`);
      return c.json(withEtag(c, row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms/{id}/nics",
      tags,
      summary: "Add a NIC (VM created or shut down); IPAM assigns its address",
      request: { params: VmParams, body: body(NewNic) },
      responses: { 201: json(Nic, "Added", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const row = await transaction(deps.sql, async (tx) => {
        const vm = await vmOr404(tx, id, true);
        assertVmAction(vm, "add_nic");
        const nic = await addNic(tx, vm, input);
        await audit(tx, c, {
          action: "add_nic",
          resource_type: "vm",
          resource_id: id,
          summary: { name: vm.name, device_id: nic.device_id, ip_address: nic.ip_address },
        });
        return nic;
      });
      // Every host of a dhcp network serves the new reservation before the VM can boot.
      await syncReservations(deps, [row.network_id]);
      c.header("Location", `/v1/vms/${id}/nics/${row.device_id}`);
      return c.json(withEtag(c, row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/vms/{id}/nics/{device_id}",
      tags,
      summary: "Change a NIC's address, MAC or MTU (VM created or shut down)",
      description: "A new `ip_address` must be free on the NIC's network (409 otherwise); the " +
        "NIC's DHCP reservation follows on every host of a dhcp network before the response.",
      request: { params: DeviceParams, headers: IfMatchHeaders, body: patchBody(NicPatch) },
      responses: { 200: json(Nic, "Updated", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id, device_id } = c.req.valid("param");
      const patch = defined(c.req.valid("json"));
      const row = await transaction(deps.sql, async (tx) => {
        const vm = await vmOr404(tx, id, true);
        const cur = await getNic(tx, id, device_id);
        if (!cur) throw new NotFoundError(`vm ${id} has no NIC ${device_id}`);
        checkIfMatch(c, cur.version, `NIC ${device_id} of vm ${id}`);
        const fields = await nicChanges(tx, cur, patch);
        if (Object.keys(fields).length === 0) return cur;
        assertVmAction(vm, "update_nic");
        const updated = await updateNic(tx, cur.id, fields);
        if (!updated) throw new NotFoundError(`vm ${id} has no NIC ${device_id}`);
        await audit(tx, c, {
          action: "update_nic",
          resource_type: "vm",
          resource_id: id,
          summary: { name: vm.name, device_id, fields: Object.keys(fields) },
        });
        return updated;
      });
      await syncReservations(deps, [row.network_id]);
      return c.json(withEtag(c, row), 200);
    },
  );

  return app;
}

/**
 * What a NIC patch changes (only fields that differ): a new address is checked against the
 * network and moved in IPAM under the network's lock; a new MAC must be unicast and unused.
 */
async function nicChanges(
  tx: Db,
  cur: NicRow,
  patch: Partial<z.infer<typeof NicPatch>>,
): Promise<Partial<Pick<NicRow, "mac_address" | "ip_address" | "mtu">>> {
  const fields: Partial<Pick<NicRow, "mac_address" | "ip_address" | "mtu">> = {};
  if (patch.ip_address !== undefined && patch.ip_address !== cur.ip_address) {
    const net = await networks.get(tx, cur.network_id, true);
    const ipam = net && ipamOf(net);
    if (!net || !ipam) {
      throw InvalidArgumentError.field(
        "ip_address",
        `network ${net?.name ?? cur.network_id} has no IPAM (mode none)`,
      );
    }
    const ip = formatAddress(checkStaticAddress(ipam, patch.ip_address));
    if (ip !== cur.ip_address) {
      const holder = await allocationOf(tx, net.id, ip);
      if (holder) {
        throw new AlreadyExistsError(
          `${ip} is already allocated on network ${net.name} (vm ${
            holder.vm_name ?? holder.vm_id
          })`,
          { details: [{ field: "ip_address", message: "already allocated" }] },
        );
      }
      await moveAllocation(tx, cur.id, ip);
      fields.ip_address = ip;
    }
  }
  if (patch.mac_address !== undefined) {
    const mac = checkRequestedMac(patch.mac_address);
    if (mac !== cur.mac_address) fields.mac_address = mac;
  }
  if (patch.mtu !== undefined && patch.mtu !== cur.mtu) fields.mtu = patch.mtu;
  return fields;
}
