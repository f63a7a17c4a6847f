import assert from "node:assert/strict";
import { createTestApi, fieldsOf } from "../../tests/support/api.ts";

Deno.test("storage pools, attachments, objects and disk creation", async (t) => {
  await using api = await createTestApi();
  const host = await api.create("/v1/hosts", { name: "h1", address: "10.0.0.1" });
  let pool: { id: string };
  let image: { id: string };

  await t.step("pool CRUD and validation", async () => {
    const res = await api.post("/v1/storage-pools", {
      name: "local",
      path: "/var/lib/qarax/pools/local/",
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.path, "/var/lib/qarax/pools/local");
    assert.equal(res.body.type, "local");
    assert.equal(res.body.status, "active");
    pool = res.body;
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "p", path: "relative/dir" }, "path"],
      [{ name: "p", path: "/a/../b" }, "path"],
      [{ name: "p", path: "/" }, "path"],
      [{ name: "p", path: "/x", type: "nfs" }, "type"],
      [{ name: "p", path: "/x", type: "ceph" }, "type"],
      [{ name: "p", path: "/x", capacity_bytes: 0 }, "capacity_bytes"],
      [{ path: "/x" }, "name"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/storage-pools", input);
      assert.equal(r.status, 422, JSON.stringify(input));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
    const p = await api.patch(`/v1/storage-pools/${pool.id}`, {
      description: "fast",
      capacity_bytes: 10 ** 12,
    });
    assert.equal(p.body.capacity_bytes, 10 ** 12);
  });

  await t.step("host attachments", async () => {
    const att = await api.post(`/v1/storage-pools/${pool.id}/hosts`, { host_id: host.id });
    assert.equal(att.status, 201);
    assert.equal(att.body.status, "pending");
    assert.equal(att.headers.get("location"), `/v1/storage-pools/${pool.id}/hosts/${host.id}`);
    assert.equal(
      (await api.post(`/v1/storage-pools/${pool.id}/hosts`, { host_id: host.id })).status,
      409,
    );
    const missingHost = await api.post(`/v1/storage-pools/${pool.id}/hosts`, {
      host_id: "00000000-0000-4000-8000-000000000000",
    });
    assert.equal(missingHost.status, 422);
    assert.deepEqual(fieldsOf(missingHost), ["host_id"]);
    const list = await api.get(`/v1/storage-pools/${pool.id}/hosts`);
    assert.deepEqual(list.body.items.map((a: { host_id: string }) => a.host_id), [host.id]);
    assert.equal((await api.get(`/v1/storage-pools/${pool.id}/hosts/${host.id}`)).status, 200);
  });

  await t.step("registering files: clean paths inside the pool", async () => {
    const res = await api.post("/v1/storage-objects", {
      name: "focal",
      storage_pool_id: pool.id,
      type: "image",
      format: "qcow2",
      path: "/var/lib/qarax/pools/local/images/focal.qcow2",
      size_bytes: 2 * 1024 ** 3,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.path, "images/focal.qcow2");
    assert.equal(res.body.status, "ready");
    image = res.body;
    const kernel = await api.post("/v1/storage-objects", {
      name: "vmlinux",
      storage_pool_id: pool.id,
      type: "kernel",
      path: "vmlinux",
    });
    assert.equal(kernel.body.format, null);
    const base = { name: "x", storage_pool_id: pool.id, type: "disk", path: "x.img" };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, path: "../etc/passwd" }, "path"],
      [{ ...base, path: "/etc/passwd" }, "path"],
      [{ ...base, path: "a//b" }, "path"],
      [{ ...base, path: "dir/" }, "path"],
      [{ ...base, path: "a b" }, "path"],
      [{ ...base, type: "kernel", format: "raw" }, "format"],
      [{ ...base, type: "blob" }, "type"],
      [{ ...base, storage_pool_id: "00000000-0000-4000-8000-000000000000" }, "storage_pool_id"],
      [{ ...base, parent_id: image.id }, "parent_id"],
      [{ ...base, size_bytes: -1 }, "size_bytes"],
      [{ ...base, sha256: "abc" }, "sha256"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/storage-objects", input);
      assert.equal(r.status, 422, JSON.stringify(input));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
    const dup = await api.post("/v1/storage-objects", { ...base, name: "focal" });
    assert.equal(dup.status, 409);
    assert.deepEqual(fieldsOf(dup), ["name"]);
    const dupPath = await api.post("/v1/storage-objects", { ...base, path: "vmlinux" });
    assert.equal(dupPath.status, 409);
    assert.deepEqual(fieldsOf(dupPath), ["path"]);
    const list = await api.get(`/v1/storage-objects?storage_pool_id=${pool.id}&type=kernel`);
    assert.deepEqual(list.body.items.map((o: { name: string }) => o.name), ["vmlinux"]);
  });

  await t.step("disk creation queues a pending job and a creating object", async () => {
    const blank = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "blank",
      size_bytes: 1024 ** 3,
      format: "qcow2",
    });
    assert.equal(blank.status, 202, JSON.stringify(blank.body));
    assert.equal(blank.headers.get("location"), `/v1/jobs/${blank.body.id}`);
    assert.equal(blank.body.type, "disk_create");
    assert.equal(blank.body.status, "pending");
    assert.equal(blank.body.resource_type, "storage_object");
    assert.equal(blank.body.params.kind, "blank");
    assert.equal(blank.body.params.format, "qcow2");
    const obj = (await api.get(`/v1/storage-objects/${blank.body.resource_id}`)).body;
    assert.equal(obj.status, "creating");
    assert.equal(obj.path, `${obj.id}.qcow2`);
    assert.equal(blank.body.params.path, obj.path);

    const clone = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "vm1-root",
      base_object_id: image.id,
      path: "vms/vm1-root.qcow2",
    });
    assert.equal(clone.status, 202, JSON.stringify(clone.body));
    assert.equal(clone.body.params.kind, "clone");
    assert.equal(clone.body.params.base_path, "images/focal.qcow2");
    assert.equal(clone.body.params.size_bytes, 2 * 1024 ** 3);
    const cloneObj = (await api.get(`/v1/storage-objects/${clone.body.resource_id}`)).body;
    assert.equal(cloneObj.parent_id, image.id);

    const dl = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "jammy",
      source_url: "https://example.org/jammy.img",
      sha256: "A".repeat(64),
      type: "image",
      format: "qcow2",
    });
    assert.equal(dl.status, 202, JSON.stringify(dl.body));
    assert.equal(dl.body.params.kind, "download");
    assert.equal(dl.body.params.sha256, "a".repeat(64));

    const jobs = await api.get("/v1/jobs?type=disk_create&status=pending");
    assert.equal(jobs.body.items.length, 3);
    assert.equal(jobs.body.items[0].id, dl.body.id, "newest first");
    const job = await api.get(`/v1/jobs/${clone.body.id}`);
    assert.equal(job.status, 200);
    assert.equal(job.headers.get("etag"), '"1"');
    assert.equal((await api.get("/v1/jobs/00000000-0000-4000-8000-000000000000")).status, 404);
    const audit = await api.get(`/v1/audit-logs?resource_id=${dl.body.resource_id}`);
    assert.equal(audit.body.items[0].action, "create_disk");
  });

  await t.step("disk creation validation", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "d" }, "size_bytes"],
      [{ name: "d", size_bytes: 1000 }, "size_bytes"],
      [{ name: "d", size_bytes: 0 }, "size_bytes"],
      [{ name: "d", size_bytes: 512, format: "vmdk" }, "format"],
      [{ name: "d", base_object_id: image.id, format: "raw" }, "format"],
      [{ name: "d", base_object_id: image.id, size_bytes: 512 }, "size_bytes"],
      [{ name: "d", base_object_id: "00000000-0000-4000-8000-000000000000" }, "base_object_id"],
      [{ name: "d", source_url: "ftp://x/y" }, "source_url"],
      [{ name: "d", source_url: "https://x/y", base_object_id: image.id }, "source_url"],
      [{ name: "d", source_url: "https://x/y", size_bytes: 512 }, "size_bytes"],
      [{ name: "d", size_bytes: 512, sha256: "a".repeat(64) }, "sha256"],
      [{ name: "d", size_bytes: 512, type: "iso" }, "type"],
      [{ name: "d", size_bytes: 512, path: "../x" }, "path"],
      [{ name: "focal", size_bytes: 512 }, "name"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post(`/v1/storage-pools/${pool.id}/disks`, input);
      assert.ok(r.status === 422 || r.status === 409, JSON.stringify([input, r.body]));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
    const gone = await api.post("/v1/storage-pools/00000000-0000-4000-8000-000000000000/disks", {
      name: "d",
      size_bytes: 512,
    });
    assert.equal(gone.status, 404);
    await api.patch(`/v1/storage-pools/${pool.id}`, { status: "inactive" });
    const inactive = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "d",
      size_bytes: 512,
    });
    assert.equal(inactive.status, 409);
    await api.patch(`/v1/storage-pools/${pool.id}`, { status: "active" });
  });

  await t.step(
    "objects in use or being created cannot be deleted; pools with objects neither",
    async () => {
      const used = await api.del(`/v1/storage-objects/${image.id}`);
      assert.equal(used.status, 409);
      assert.match(used.body.message, /in use by storage object vm1-root/);
      const creating = (await api.get("/v1/storage-objects?name=blank")).body.items[0];
      const busy = await api.del(`/v1/storage-objects/${creating.id}`);
      assert.equal(busy.status, 409);
      assert.match(busy.body.message, /active job/);
      const pooled = await api.del(`/v1/storage-pools/${pool.id}`);
      assert.equal(pooled.status, 409);
      assert.match(pooled.body.message, /holds \d+ storage object/);
      const kernel = (await api.get("/v1/storage-objects?name=vmlinux")).body.items[0];
      assert.equal(
        (await api.patch(`/v1/storage-objects/${kernel.id}`, { name: "vmlinux-6" })).body.name,
        "vmlinux-6",
      );
      assert.equal((await api.del(`/v1/storage-objects/${kernel.id}`)).status, 204);
    },
  );

  await t.step("detach and delete an empty pool", async () => {
    const other = await api.create("/v1/storage-pools", { name: "scratch", path: "/srv/scratch" });
    await api.create(`/v1/storage-pools/${other.id}/hosts`, { host_id: host.id });
    const attached = await api.del(`/v1/storage-pools/${other.id}`);
    assert.equal(attached.status, 409);
    assert.match(attached.body.message, /attached to 1 host/);
    assert.equal((await api.del(`/v1/storage-pools/${other.id}/hosts/${host.id}`)).status, 204);
    assert.equal((await api.del(`/v1/storage-pools/${other.id}/hosts/${host.id}`)).status, 404);
    assert.equal((await api.del(`/v1/storage-pools/${other.id}`)).status, 204);
  });
});

Deno.test("local-pool objects belong to one host: register, clone, list, host delete", async (t) => {
  await using api = await createTestApi();
  const h1 = await api.create("/v1/hosts", { name: "h1", address: "10.0.0.1" });
  const h2 = await api.create("/v1/hosts", { name: "h2", address: "10.0.0.2" });
  const h3 = await api.create("/v1/hosts", { name: "h3", address: "10.0.0.3" });
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/local" });
  const reg = (input: Record<string, unknown>) =>
    api.post("/v1/storage-objects", { storage_pool_id: pool.id, type: "disk", ...input });

  await t.step("no host attached: the host is unknown (null)", async () => {
    const r = await reg({ name: "loose", path: "loose.img" });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.host_id, null);
  });

  await t.step("one host attached: it is the default", async () => {
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h1.id });
    const r = await reg({ name: "one", path: "one.img" });
    assert.equal(r.body.host_id, h1.id);
  });

  await t.step("two hosts attached: host_id is required, and must have the pool", async () => {
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h2.id });
    const missing = await reg({ name: "two", path: "two.img" });
    assert.equal(missing.status, 422);
    assert.deepEqual(fieldsOf(missing), ["host_id"]);
    assert.match(
      missing.body.message,
      /required: storage pool local is local and attached to 2 hosts \(h1, h2\)/,
    );
    const away = await reg({ name: "two", path: "two.img", host_id: h3.id });
    assert.equal(away.status, 422);
    assert.match(
      away.body.message,
      /host .* does not have storage pool local attached \(attached to: h1, h2\)/,
    );
    const ok = await reg({ name: "two", path: "two.img", host_id: h2.id });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.host_id, h2.id);
    // null: the file was copied to every host of the pool; placement is not constrained.
    const everywhere = await reg({
      name: "kernel",
      type: "kernel",
      path: "vmlinux",
      host_id: null,
    });
    assert.equal(everywhere.status, 201);
    assert.equal(everywhere.body.host_id, null);
  });

  await t.step("an overlay goes with its backing file's host", async () => {
    const base = await reg({ name: "base", path: "base.qcow2", format: "qcow2", host_id: h2.id });
    const child = await reg({
      name: "child",
      path: "child.qcow2",
      format: "qcow2",
      parent_id: base.body.id,
    });
    assert.equal(child.status, 201);
    assert.equal(child.body.host_id, h2.id);
    const wrong = await reg({
      name: "child2",
      path: "child2.qcow2",
      format: "qcow2",
      parent_id: base.body.id,
      host_id: h1.id,
    });
    assert.equal(wrong.status, 422);
    assert.match(wrong.body.message, /must be host h2, where base \(its backing file\) lives/);
    // A linked clone is queued on the base's host; asking for another host is refused.
    const clone = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "clone",
      base_object_id: base.body.id,
      size_bytes: 1024 ** 3,
    });
    assert.equal(clone.status, 202, JSON.stringify(clone.body));
    assert.equal(clone.body.params.host_id, h2.id);
    assert.equal(clone.body.params.base_object_id, base.body.id);
    const obj = (await api.get(`/v1/storage-objects/${clone.body.resource_id}`)).body;
    assert.equal(obj.host_id, h2.id);
    const elsewhere = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "clone2",
      base_object_id: base.body.id,
      size_bytes: 1024 ** 3,
      host_id: h1.id,
    });
    assert.equal(elsewhere.status, 422);
    assert.deepEqual(fieldsOf(elsewhere), ["host_id"]);
    // A blank disk on two hosts is left to the job (null until it chooses).
    const blank = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "blank",
      size_bytes: 1024 ** 2,
    });
    assert.equal(blank.body.params.host_id, null);
  });

  await t.step("lists filter by host", async () => {
    const names = async (q: string) =>
      (await api.get(`/v1/storage-objects?${q}`)).body.items.map((o: { name: string }) => o.name)
        .sort();
    assert.deepEqual(await names(`host_id=${h2.id}`), ["base", "child", "clone", "two"]);
    assert.deepEqual(await names(`host_id=${h1.id}`), ["one"]);
    assert.equal((await api.get("/v1/storage-objects?host_id=nope")).status, 422);
  });

  await t.step("a host holding local objects cannot be deleted (409 naming them)", async () => {
    const r = await api.del(`/v1/hosts/${h1.id}`);
    assert.equal(r.status, 409);
    assert.match(r.body.message, /host h1 holds 1 storage object\(s\) of local pools \(one\)/);
    const one = (await api.get("/v1/storage-objects?name=one")).body.items[0];
    assert.equal((await api.del(`/v1/storage-objects/${one.id}`)).status, 204);
    assert.equal((await api.del(`/v1/hosts/${h1.id}`)).status, 204);
    assert.equal((await api.del(`/v1/hosts/${h3.id}`)).status, 204);
  });

  await t.step("the pool cannot be detached from a host holding its objects (409)", async () => {
    const r = await api.del(`/v1/storage-pools/${pool.id}/hosts/${h2.id}`);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.match(
      r.body.message,
      /host h2 holds 4 storage object\(s\) of pool local \(base, child, clone, two\)/,
    );
    assert.equal((await api.get(`/v1/storage-pools/${pool.id}/hosts/${h2.id}`)).status, 200);
  });
});

Deno.test("local pools: a path is per host; an every-host object takes it on all", async (t) => {
  await using api = await createTestApi();
  const hv1 = await api.create("/v1/hosts", { name: "hv1", address: "10.0.0.1" });
  const hv2 = await api.create("/v1/hosts", { name: "hv2", address: "10.0.0.2" });
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/local" });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: hv1.id });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: hv2.id });
  const reg = (input: Record<string, unknown>) =>
    api.post("/v1/storage-objects", { storage_pool_id: pool.id, type: "image", ...input });

  await t.step("the same path on two hosts: two objects", async () => {
    const a = await reg({ name: "ubuntu-hv1", path: "ubuntu.img", host_id: hv1.id });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const b = await reg({ name: "ubuntu-hv2", path: "/srv/local/ubuntu.img", host_id: hv2.id });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    assert.equal(b.body.path, "ubuntu.img");
  });

  await t.step("the same path on the same host: 409 naming the other object", async () => {
    const r = await reg({ name: "ubuntu-again", path: "ubuntu.img", host_id: hv1.id });
    assert.equal(r.status, 409);
    assert.deepEqual(fieldsOf(r), ["path"]);
    assert.match(
      r.body.message,
      /path ubuntu.img of storage pool local is taken by storage object ubuntu-hv1 .*on host hv1/,
    );
    // A disk created there is refused the same way.
    const disk = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "ubuntu-disk",
      path: "ubuntu.img",
      size_bytes: 1024 ** 2,
      host_id: hv2.id,
    });
    assert.equal(disk.status, 409);
    assert.match(disk.body.message, /taken by storage object ubuntu-hv2 .*on host hv2/);
  });

  await t.step("an every-host object and a host's object never share a path", async () => {
    const onAll = await reg({ name: "ubuntu-all", path: "ubuntu.img", host_id: null });
    assert.equal(onAll.status, 409);
    assert.match(onAll.body.message, /taken by storage object ubuntu-hv1 .*on host hv1/);
    const kernel = await reg({ name: "vmlinux", type: "kernel", path: "vmlinux", host_id: null });
    assert.equal(kernel.status, 201);
    const mine = await reg({
      name: "my-vmlinux",
      type: "kernel",
      path: "vmlinux",
      host_id: hv2.id,
    });
    assert.equal(mine.status, 409);
    assert.deepEqual(fieldsOf(mine), ["path"]);
    assert.match(mine.body.message, /taken by storage object vmlinux .*on every host/);
    // A disk whose host the job will choose takes its path on every host until then.
    const unplaced = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "scratch",
      path: "scratch.img",
      size_bytes: 1024 ** 2,
    });
    assert.equal(unplaced.status, 202, JSON.stringify(unplaced.body));
    const later = await reg({ name: "scratch2", path: "scratch.img", host_id: hv1.id });
    assert.equal(later.status, 409);
    assert.match(later.body.message, /scratch .*its host not chosen yet/);
  });
});
