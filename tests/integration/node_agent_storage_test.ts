/**
 * Disks through the agent: images made with the FileTransferService (raw, qcow2, a qcow2
 * linked clone) booted with explicit image types, the cloud-init seed's contents, hotplug,
 * disk and VM resizing, snapshot and restore, and path confinement of everything a VM uses.
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { run } from "../../shared/cmd/run.ts";
import { node } from "../../shared/proto/mod.ts";
import { VmmClient } from "../../node/vmm/client.ts";
import { POOL_ID, TestAgent, vmmPidsUnder } from "../support/node_agent.ts";

const MiB = 1024 * 1024;
const S = node.VmStatus;

async function rejectsWith(p: Promise<unknown>, code: Status, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof ClientError, String(err));
    assert.equal(Status[err.code], Status[code], err.details);
    if (pattern) assert.match(err.details, pattern);
    return true;
  });
}

async function createDisk(agent: TestAgent, req: node.CreateDiskRequest.$Properties) {
  let last: node.TransferResponse | undefined;
  for await (const r of agent.files.createDisk(req)) last = r;
  assert.ok(last?.isFinal && last.success, last?.error ?? "no final message");
}

/** A file of the cloud-init seed image, read with mtools. */
async function seedFile(image: string, name: string): Promise<string> {
  const r = await run(["mcopy", "-n", "-i", image, `::${name}`, "-"], {
    env: { MTOOLS_SKIP_CHECK: "1" },
  });
  return r.stdout;
}

Deno.test("disks from the FileTransferService boot with explicit types; cloud-init seed; hotplug; resize; snapshot", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const pool = agent.poolDir;
  await createDisk(agent, { path: `${pool}/root.raw`, sizeBytes: 64 * MiB, blank: {} });
  await createDisk(agent, { path: `${pool}/base.qcow2`, sizeBytes: 32 * MiB, qcow2: {} });
  await createDisk(agent, {
    path: `${pool}/clone.qcow2`,
    overlay: { basePath: `${pool}/base.qcow2` },
  });
  const id = "5a1e0000-1111-4222-8333-444455556666";
  const userData = "#cloud-config\nruncmd: [echo hello]\n";
  const created = await agent.vms.createVM({
    vmId: id,
    name: "Db Server",
    cpus: { bootVcpus: 1, maxVcpus: 4 },
    payload: { kernel },
    disks: [{ id: "root", path: `${pool}/root.raw` }, { id: "clone", path: `${pool}/clone.qcow2` }],
    cloudInit: { userData },
  });
  assert.equal(created.status, S.VM_STATUS_CREATED);

  // What the VMM was given: explicit image types, the overlay's backing files, the seed.
  const dir = `${agent.runtimeDir}/${id}`;
  using ch = new VmmClient({ socketPath: `${dir}/api.sock` });
  const disks = (await ch.info()).config.disks!;
  assert.deepEqual(
    disks.map((d) => [d.id, d.image_type, d.backing_files ?? false, d.readonly ?? false]),
    [["root", "Raw", false, false], ["clone", "Qcow2", true, false], [
      "cidata",
      "Raw",
      false,
      true,
    ]],
  );
  assert.equal(disks[2].path, `${dir}/cidata.img`);
  assert.equal(disks[0].path, `${pool}/root.raw`);
  assert.equal((await Deno.stat(`${dir}/cidata.img`)).mode! & 0o777, 0o600);
  assert.equal(await seedFile(`${dir}/cidata.img`, "user-data"), userData);
  const meta = await seedFile(`${dir}/cidata.img`, "meta-data");
  assert.match(meta, new RegExp(`instance-id: ${id}`));
  assert.match(meta, /local-hostname: db-server/);
  const label = await run(["mlabel", "-i", `${dir}/cidata.img`, "-s", "::"], {
    env: { MTOOLS_SKIP_CHECK: "1" },
  });
  assert.match(label.stdout, /CIDATA/);

  await agent.vms.startVM({ id });
  const counters = await agent.vms.getVmCounters({ id });
  assert.ok(counters.counters.root?.values.read_bytes !== undefined, "disk counters");

  // Hotplug a disk; the change is persisted in the VM's spec.
  await createDisk(agent, { path: `${pool}/data.raw`, sizeBytes: 8 * MiB, blank: {} });
  await agent.vms.addDiskDevice({ vmId: id, config: { id: "data", path: `${pool}/data.raw` } });
  await agent.vms.addDiskDevice({ vmId: id, config: { id: "data", path: `${pool}/data.raw` } });
  await rejectsWith(
    agent.vms.addDiskDevice({ vmId: id, config: { id: "data", path: `${pool}/root.raw` } }),
    Status.ALREADY_EXISTS,
  );
  assert.ok((await ch.info()).config.disks!.some((d) => d.id === "data"));
  assert.ok((await agent.vms.getVmInfo({ id })).config.disks.some((d) => d.id === "data"));
  await agent.vms.removeDiskDevice({ vmId: id, deviceId: "data" });
  await agent.vms.removeDiskDevice({ vmId: id, deviceId: "data" });
  assert.ok(!(await agent.vms.getVmInfo({ id })).config.disks.some((d) => d.id === "data"));

  // Online disk growth goes through CH; vCPU hotplug updates the spec.
  await agent.vms.resizeDisk({ vmId: id, diskId: "root", newSize: 128 * MiB });
  assert.equal((await Deno.stat(`${pool}/root.raw`)).size, 128 * MiB);
  await agent.vms.resizeVm({ vmId: id, desiredVcpus: 2 });
  assert.equal((await agent.vms.getVmInfo({ id })).config.cpus?.bootVcpus, 2);
  await rejectsWith(agent.vms.resizeVm({ vmId: id, desiredVcpus: 9 }), Status.INVALID_ARGUMENT);

  // Snapshot (pause, snapshot, resume) into the pool, then restore it into a fresh VMM.
  await agent.vms.snapshotVM({ vmId: id, snapshotUrl: `file://${pool}/snapshots/s1` });
  assert.ok((await Deno.stat(`${pool}/snapshots/s1/config.json`)).isFile);
  assert.equal((await agent.vms.getVmInfo({ id })).status, S.VM_STATUS_RUNNING);
  await rejectsWith(
    agent.vms.snapshotVM({ vmId: id, snapshotUrl: `file://${agent.dir}/outside` }),
    Status.FAILED_PRECONDITION,
  );
  await rejectsWith(
    agent.vms.restoreVM({ vmId: id, sourceUrl: `file://${pool}/snapshots/s1` }),
    Status.FAILED_PRECONDITION,
    /stop it/,
  );
  const oldPid = (await agent.vms.getVmInfo({ id })).vmmPid;
  await agent.vms.forceStopVM({ id });
  await agent.vms.restoreVM({ vmId: id, sourceUrl: `file://${pool}/snapshots/s1` });
  const restored = await agent.vms.getVmInfo({ id });
  assert.equal(restored.status, S.VM_STATUS_RUNNING);
  assert.notEqual(restored.vmmPid, oldPid, "restored into a fresh VMM");

  // Offline growth of a qcow2 goes through qemu-img.
  await agent.vms.forceStopVM({ id });
  await agent.vms.resizeDisk({ vmId: id, diskId: "clone", newSize: 48 * MiB });
  const info = await run(["qemu-img", "info", "--output=json", "-U", `${pool}/clone.qcow2`]);
  assert.equal(JSON.parse(info.stdout)["virtual-size"], 48 * MiB);

  // A pool in use cannot be detached.
  await rejectsWith(agent.vms.detachStoragePool({ poolId: POOL_ID }), Status.FAILED_PRECONDITION);
  await agent.vms.deleteVM({ id });
  assert.deepEqual(vmmPidsUnder(agent.dir), []);
  await agent.vms.detachStoragePool({ poolId: POOL_ID });
});

Deno.test("every path a VM uses must stay inside the attached pools", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const pool = agent.poolDir;
  const outside = `${agent.dir}/outside`;
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/vmlinux`, "k");
  await run(["qemu-img", "create", "-q", "-f", "qcow2", `${outside}/base.qcow2`, "16M"]);
  await run([
    "qemu-img",
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    `${outside}/base.qcow2`,
    "-F",
    "qcow2",
    `${pool}/sneaky.qcow2`,
  ]);
  await Deno.symlink(`${outside}/vmlinux`, `${pool}/link-out`);
  const id = "5a1e0000-1111-4222-8333-000000000002";
  const cases: [node.VmConfig.$Properties, Status, RegExp][] = [
    [{ payload: { kernel: `${outside}/vmlinux` } }, Status.FAILED_PRECONDITION, /storage pool/],
    [{ payload: { kernel: `${pool}/link-out` } }, Status.PERMISSION_DENIED, /symbolic link/],
    [{ payload: { kernel: `${pool}/../outside/vmlinux` } }, Status.INVALID_ARGUMENT, /kernel/],
    [{ payload: { kernel, initramfs: `${pool}/missing` } }, Status.FAILED_PRECONDITION, /exist/],
    [
      { payload: { kernel }, disks: [{ id: "d", path: `${pool}/sneaky.qcow2` }] },
      Status.FAILED_PRECONDITION,
      /backing file/,
    ],
    [
      { payload: { kernel }, disks: [{ id: "d", path: `${pool}/none.raw` }] },
      Status.FAILED_PRECONDITION,
      /does not exist/,
    ],
  ];
  for (const [spec, code, pattern] of cases) {
    await rejectsWith(agent.vms.createVM({ vmId: id, ...spec }), code, pattern);
    // A failed CreateVM leaves nothing behind.
    await rejectsWith(agent.vms.getVmInfo({ id }), Status.NOT_FOUND);
    await assert.rejects(Deno.stat(`${agent.runtimeDir}/${id}`), Deno.errors.NotFound);
  }
  assert.deepEqual(vmmPidsUnder(agent.dir), []);
});
