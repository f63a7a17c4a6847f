import assert from "node:assert/strict";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
} from "../../shared/errors/errors.ts";
import { confinePath, isWithin, resolveReal } from "./paths.ts";

async function withTree(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-paths-" }));
  try {
    await Deno.mkdir(`${dir}/pool/sub`, { recursive: true });
    await Deno.mkdir(`${dir}/other`);
    await Deno.writeTextFile(`${dir}/pool/disk.raw`, "");
    await Deno.writeTextFile(`${dir}/other/secret`, "");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("isWithin compares whole path segments", () => {
  assert.ok(isWithin("/srv/pool/a", "/srv/pool"));
  assert.ok(isWithin("/srv/pool", "/srv/pool/"));
  assert.ok(!isWithin("/srv/pool2/a", "/srv/pool"));
});

Deno.test("paths inside a pool resolve to their real location, existing or not", async () => {
  await withTree(async (dir) => {
    const roots = [{ name: "pool p1", path: `${dir}/pool` }];
    assert.equal(await confinePath(`${dir}/pool/disk.raw`, roots), `${dir}/pool/disk.raw`);
    assert.equal(
      await confinePath(`${dir}/pool/new/deeper/x.qcow2`, roots),
      `${dir}/pool/new/deeper/x.qcow2`,
    );
    // A symlink that stays inside the pool is fine.
    await Deno.symlink(`${dir}/pool/disk.raw`, `${dir}/pool/sub/link.raw`);
    assert.equal(await confinePath(`${dir}/pool/sub/link.raw`, roots), `${dir}/pool/disk.raw`);
    // The pool itself is not a file.
    await assert.rejects(() => confinePath(`${dir}/pool`, roots), InvalidArgumentError);
    await assert.rejects(() => confinePath(`${dir}/pool/`, roots), InvalidArgumentError);
  });
});

Deno.test("'..', relative and odd paths are malformed", async () => {
  await withTree(async (dir) => {
    const roots = [{ name: "pool p1", path: `${dir}/pool` }];
    for (
      const bad of [
        `${dir}/pool/../other/secret`,
        "pool/disk.raw",
        `${dir}/pool/a b`,
        `${dir}/pool/./x`,
      ]
    ) {
      await assert.rejects(() => confinePath(bad, roots, "disks.0.path"), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${bad}: ${e}`);
        assert.equal(e.details[0].field, "disks.0.path");
        return true;
      });
    }
  });
});

Deno.test("symlinks leading out of the pool are refused, for files and for parents", async () => {
  await withTree(async (dir) => {
    const roots = [{ name: "pool p1", path: `${dir}/pool` }];
    await Deno.symlink(`${dir}/other/secret`, `${dir}/pool/escape.raw`);
    await Deno.symlink(`${dir}/other`, `${dir}/pool/outdir`);
    await Deno.symlink(`${dir}/other/not-yet`, `${dir}/pool/dangling.raw`);
    await assert.rejects(() => confinePath(`${dir}/pool/escape.raw`, roots), PermissionDeniedError);
    await assert.rejects(
      () => confinePath(`${dir}/pool/outdir/secret`, roots),
      PermissionDeniedError,
    );
    await assert.rejects(
      () => confinePath(`${dir}/pool/outdir/new.raw`, roots),
      PermissionDeniedError,
    );
    await assert.rejects(
      () => confinePath(`${dir}/pool/dangling.raw`, roots),
      /dangling symbolic link/,
    );
    // Without following the last component, the link itself is what is named (to delete it).
    const entry = await confinePath(`${dir}/pool/escape.raw`, roots, "path", { noFollow: true });
    assert.equal(entry, `${dir}/pool/escape.raw`);
    await assert.rejects(
      () => confinePath(`${dir}/pool/outdir/secret`, roots, "path", { noFollow: true }),
      PermissionDeniedError,
    );
  });
});

Deno.test("paths outside every pool are refused, naming the pools", async () => {
  await withTree(async (dir) => {
    const roots = [{ name: "pool p1", path: `${dir}/pool` }];
    await assert.rejects(() => confinePath(`${dir}/other/secret`, roots), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.match(e.message, /not inside an attached storage pool \(attached: pool p1/);
      return true;
    });
    await assert.rejects(() => confinePath("/etc/shadow", []), /attached: none/);
    // A pool whose directory vanished holds nothing.
    await assert.rejects(
      () => confinePath(`${dir}/gone/x`, [{ name: "pool gone", path: `${dir}/gone` }]),
      FailedPreconditionError,
    );
  });
});

Deno.test("resolveReal follows the nearest existing parent", async () => {
  await withTree(async (dir) => {
    await Deno.symlink(`${dir}/pool`, `${dir}/alias`);
    assert.equal(await resolveReal(`${dir}/alias/a/b`), `${dir}/pool/a/b`);
    await assert.rejects(() => resolveReal(`${dir}/pool/disk.raw/x`), /not a directory/);
  });
});
