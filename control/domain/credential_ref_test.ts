/** Credential references: syntax at the edge, resolution at run time. */
import assert from "node:assert/strict";
import { credentialRefProblem, parseCredentialRef, resolveCredential } from "./credential_ref.ts";

Deno.test("credentialRefProblem accepts env:// and absolute file:// references only", () => {
  for (const ok of ["env://QARAX_SSH_KEY", "env://_k1", "file:///etc/qarax/id_ed25519"]) {
    assert.equal(credentialRefProblem(ok), null, ok);
  }
  for (
    const bad of [
      "",
      "QARAX_KEY",
      "env://",
      "env://1A",
      "env://A-B",
      "file://rel/key",
      "file:///a/../b",
      "file:///a/./b",
      "vault://x",
      "file:///a b",
      "/etc/key",
    ]
  ) {
    assert.ok(credentialRefProblem(bad), bad);
  }
  assert.deepEqual(parseCredentialRef("env://K", "f"), { kind: "env", name: "K" });
  assert.deepEqual(parseCredentialRef("file:///k", "f"), { kind: "file", path: "/k" });
  assert.throws(
    () => parseCredentialRef("x", "ssh_key_ref"),
    /^InvalidArgumentError: ssh_key_ref: /,
  );
});

Deno.test("resolveCredential reads the secret; a missing one is named, its value never", async () => {
  assert.equal(
    await resolveCredential("env://K", "f", (n) => n === "K" ? "secret" : undefined),
    "secret",
  );
  await assert.rejects(
    resolveCredential("env://NOPE", "ssh_key_ref", () => undefined),
    /ssh_key_ref env:\/\/NOPE: the control plane's environment has no NOPE/,
  );
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "key material");
    assert.equal(await resolveCredential(`file://${file}`, "f"), "key material");
  } finally {
    await Deno.remove(file);
  }
  await assert.rejects(
    resolveCredential("file:///nonexistent/k", "f"),
    /cannot read \/nonexistent\/k .*NotFound/,
  );
});
