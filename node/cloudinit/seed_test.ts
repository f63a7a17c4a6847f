/** The seed image read back with mtools, as cloud-init would see it. */
import assert from "node:assert/strict";
import { run } from "../../shared/cmd/run.ts";
import { buildSeedFiles } from "./config.ts";
import { writeSeedImage } from "./seed.ts";

const env = { MTOOLS_SKIP_CHECK: "1" };

Deno.test("the seed is a VFAT image labelled CIDATA with the three files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-seed-test-" });
  try {
    const files = buildSeedFiles({
      vmId: "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10",
      name: "web-1",
      userData: "#cloud-config\npassword: s3cret\nchpasswd: { expire: false }\n",
      nics: [{ mac: "52:54:00:00:00:01", ip: "10.0.0.5/24", gateway: "10.0.0.1" }],
    });
    const image = `${dir}/cidata.img`;
    await writeSeedImage(image, files);

    const listing = (await run(["mdir", "-i", image, "::"], { env })).stdout;
    assert.match(listing, /Volume in drive : is CIDATA/);
    for (const name of ["user-data", "meta-data", "network-config"] as const) {
      const got = (await run(["mtype", "-i", image, `::${name}`], { env })).stdout;
      assert.equal(got, files[name], name);
    }
    assert.equal((await Deno.stat(image)).mode! & 0o777, 0o600);
    assert.ok((await Deno.stat(image)).size <= 2 * 1024 * 1024);

    // Rewriting replaces the image (e.g. changed user-data) and leaves no temp files.
    await writeSeedImage(image, { ...files, "user-data": "#cloud-config\n" });
    assert.equal(
      (await run(["mtype", "-i", image, "::user-data"], { env })).stdout,
      "#cloud-config\n",
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["cidata.img"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without network-config the seed holds only user-data and meta-data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-seed-test-" });
  try {
    await writeSeedImage(`${dir}/s.img`, { "user-data": "#cloud-config\n", "meta-data": "a: b\n" });
    const listing = (await run(["mdir", "-b", "-i", `${dir}/s.img`, "::"], { env })).stdout;
    assert.deepEqual(listing.trim().split("\n").map((l) => l.trim()).sort(), [
      "::/meta-data",
      "::/user-data",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
