/**
 * What the host provides for a VM spec before CH sees it: every kernel, initramfs, firmware and
 * disk path confined to the attached storage pools (firmware also to the firmware dir) and
 * resolved to its real location; disk image types detected from the file when not given (CH's
 * own autodetection disables writes to sector 0); qcow2 backing chains checked to stay inside
 * the pools before `backing_files` is turned on; the NICs' taps created on their bridges (and
 * macvtaps on their parents); the cloud-init seed written. The result feeds the pure `buildChConfig`.
 */
import { dirname, join } from "node:path";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  QaraxError,
} from "../../shared/errors/errors.ts";
import { buildSeedFiles, seedInputFromVmConfig } from "../cloudinit/config.ts";
import { writeSeedImage } from "../cloudinit/seed.ts";
import type { NetworkManager } from "../net/manager.ts";
import { detectFormat, DISK_FORMATS, type DiskFormat } from "../storage/disks.ts";
import type { PoolManager } from "../storage/pools.ts";
import { imageInfo } from "../storage/qemu_img.ts";
import type { VmPaths } from "../vmm/runtime_dir.ts";
import {
  type DiskBinding,
  type DiskSpec,
  hasManagedDevice,
  type HostBindings,
  isMacvtapNic,
  type NicSpec,
  tapIndex,
  type VmSpec,
} from "../vmm/spec.ts";

/** Longest qcow2 backing chain the node follows. */
export const MAX_BACKING_DEPTH = 16;

export interface ResourceDeps {
  pools: PoolManager;
  networks: NetworkManager;
}

/** A file that must exist: confined, resolved, and a regular file. */
async function existingFile(
  resolve: () => Promise<string>,
  path: string,
  field: string,
): Promise<string> {
  const real = await resolve();
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(real);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new FailedPreconditionError(`${field}: ${path} does not exist`, {
        details: [{ field, message: "does not exist" }],
      });
    }
    throw err;
  }
  if (!st.isFile) {
    throw InvalidArgumentError.field(field, `${path} is not a regular file`);
  }
  return real;
}

/**
 * Follows the backing chain of the qcow2 image at `real`; every backing file must resolve
 * inside an attached pool. Returns the chain length (0: a standalone qcow2).
 */
export async function checkBackingChain(
  pools: PoolManager,
  real: string,
  field: string,
): Promise<number> {
  const seen = new Set([real]);
  let current = real;
  let format: DiskFormat = "qcow2";
  for (let depth = 0;; depth++) {
    const info = await imageInfo(current, format);
    if (!info.backingFile) return depth;
    if (depth + 1 > MAX_BACKING_DEPTH) {
      throw InvalidArgumentError.field(field, `backing chain longer than ${MAX_BACKING_DEPTH}`);
    }
    const backing = info.backingFile.startsWith("/")
      ? info.backingFile
      : join(dirname(current), info.backingFile);
    let next: string;
    try {
      // Resolved the way qemu and CH will open it (`..` after a symlink included), then confined.
      const real = await Deno.realPath(backing).catch(() => {
        throw new FailedPreconditionError(`${backing} does not exist`);
      });
      next = await existingFile(() => pools.resolve(real, field), real, field);
    } catch (err) {
      const why = err instanceof QaraxError ? err.message : String(err);
      throw new FailedPreconditionError(
        `${field}: backing file ${backing} of ${current} is not usable: ${why}`,
        { details: [{ field, message: "backing file outside the attached storage pools" }] },
      );
    }
    if (seen.has(next)) throw InvalidArgumentError.field(field, `backing chain loops at ${next}`);
    seen.add(next);
    if (info.backingFormat && !(DISK_FORMATS as readonly string[]).includes(info.backingFormat)) {
      throw InvalidArgumentError.field(
        field,
        `backing file ${backing} has unsupported format ${info.backingFormat}`,
      );
    }
    format = (info.backingFormat as DiskFormat | undefined) ?? await detectFormat(next, field);
    current = next;
  }
}

/** Resolves one disk: real path, explicit image type, backing files. */
export async function bindDisk(
  pools: PoolManager,
  disk: DiskSpec,
  field: string,
): Promise<DiskBinding> {
  if (disk.vhostUser) return {};
  const real = await existingFile(
    () => pools.resolve(disk.path!, `${field}.path`),
    disk.path!,
    `${field}.path`,
  );
  let format: DiskFormat;
  try {
    format = (disk.imageType as DiskFormat | undefined) ??
      await detectFormat(real, `${field}.path`);
  } catch (err) {
    if (err instanceof NotFoundError) throw new FailedPreconditionError(err.message);
    throw err;
  }
  if (format === "raw") return { path: real, imageType: "Raw" };
  const depth = await checkBackingChain(pools, real, `${field}.path`);
  return { path: real, imageType: "Qcow2", backingFiles: depth > 0 ? true : undefined };
}

/**
 * Creates (or fixes) the host device of a NIC: the tap of a bridge NIC, the macvtap of a
 * macvtap NIC; other NICs need nothing.
 */
export async function bindNic(networks: NetworkManager, vmId: string, nic: NicSpec): Promise<void> {
  if (!hasManagedDevice(nic)) return;
  const index = tapIndex(nic.tap!);
  if (index === undefined) throw new InvalidArgumentError(`NIC ${nic.id} has no managed tap`);
  if (isMacvtapNic(nic)) {
    await networks.ensureNicMacvtap(vmId, index, {
      parent: nic.parentInterface!,
      mac: nic.mac!,
      mtu: nic.mtu ?? undefined,
    });
    return;
  }
  await networks.ensureNicTap(vmId, index, {
    bridge: nic.bridge!,
    mtu: nic.mtu ?? undefined,
    numQueues: nic.numQueues ?? undefined,
  });
}

/** Everything the host provides for `spec` (taps created, seed written). */
export async function bindHostResources(
  deps: ResourceDeps,
  spec: VmSpec,
  paths: VmPaths,
): Promise<HostBindings> {
  const p = spec.payload ?? {};
  const kernel = p.kernel
    ? await existingFile(
      () => deps.pools.resolve(p.kernel!, "payload.kernel"),
      p.kernel,
      "payload.kernel",
    )
    : undefined;
  const initramfs = p.initramfs
    ? await existingFile(
      () => deps.pools.resolve(p.initramfs!, "payload.initramfs"),
      p.initramfs,
      "payload.initramfs",
    )
    : undefined;
  const firmware = p.firmware
    ? await existingFile(
      () => deps.pools.resolveFirmware(p.firmware!, "payload.firmware"),
      p.firmware,
      "payload.firmware",
    )
    : undefined;
  const disks: Record<string, DiskBinding> = {};
  for (const [i, d] of (spec.disks ?? []).entries()) {
    disks[d.id!] = await bindDisk(deps.pools, d, `disks.${i}`);
  }
  for (const nic of spec.networks ?? []) await bindNic(deps.networks, spec.vmId!, nic);
  let seedPath: string | undefined;
  const seed = seedInputFromVmConfig(spec);
  if (seed) {
    await writeSeedImage(paths.seed, buildSeedFiles(seed));
    seedPath = paths.seed;
  }
  return {
    kernel,
    initramfs,
    firmware,
    disks,
    files: {
      serialLog: paths.serialLog,
      consoleLog: paths.consoleLog,
      serialSocket: paths.serialSocket,
      vsockSocket: paths.vsockSocket,
    },
    seedPath,
  };
}
