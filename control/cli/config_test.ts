import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  configPath,
  DEFAULT_URL,
  normalizeUrl,
  readCliFile,
  resolveSettings,
  writeCliFile,
} from "./config.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("settings: flag > env > file > default, for the URL and the token", () => {
  const file = { url: "http://file:8000", tokens: { "http://file:8000": "file-token" } };
  const env = envOf({ QARAX_URL: "http://env:8000", QARAX_TOKEN: "env-token" });
  assert.deepEqual(
    resolveSettings({ flags: { url: "http://flag:8000", token: "flag-token" }, env, file }),
    { url: "http://flag:8000", urlSource: "flag", token: "flag-token", tokenSource: "flag" },
  );
  assert.deepEqual(resolveSettings({ flags: {}, env, file }), {
    url: "http://env:8000",
    urlSource: "env",
    token: "env-token",
    tokenSource: "env",
  });
  assert.deepEqual(resolveSettings({ flags: {}, env: envOf({}), file }), {
    url: "http://file:8000",
    urlSource: "file",
    token: "file-token",
    tokenSource: "file",
  });
  assert.deepEqual(resolveSettings({ flags: {}, env: envOf({}) }), {
    url: DEFAULT_URL,
    urlSource: "default",
  });
  // An empty variable counts as unset.
  assert.equal(resolveSettings({ flags: {}, env: envOf({ QARAX_URL: "" }), file }).url, file.url);
});

Deno.test("a saved token is only sent to the server it was saved for", () => {
  const file = {
    url: "http://a:8000",
    tokens: { "http://a:8000": "token-a", "http://b:8000": "token-b" },
  };
  const other = resolveSettings({ flags: { url: "http://evil:8000" }, env: envOf({}), file });
  assert.equal(other.token, undefined);
  const b = resolveSettings({ flags: { url: "b:8000/" }, env: envOf({}), file });
  assert.deepEqual([b.url, b.token, b.tokenSource], ["http://b:8000", "token-b", "file"]);
});

Deno.test("server URLs are normalised; anything else is a usage error", () => {
  assert.equal(normalizeUrl("10.0.0.5:8000"), "http://10.0.0.5:8000");
  assert.equal(normalizeUrl("HTTPS://Qarax.Example/"), "https://qarax.example");
  assert.equal(normalizeUrl("http://h:8000/prefix/"), "http://h:8000/prefix");
  assert.equal(normalizeUrl("http://[::1]:8000"), "http://[::1]:8000");
  for (const bad of ["ftp://h", "http://u:p@h", "http://h/?x=1", "http://"]) {
    assert.throws(() => normalizeUrl(bad, "--url"), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, bad);
      assert.equal(err.details[0]?.field, "--url");
      return true;
    });
  }
});

Deno.test("config path: XDG_CONFIG_HOME, else ~/.config", () => {
  assert.equal(configPath(envOf({ XDG_CONFIG_HOME: "/x", HOME: "/h" })), "/x/qarax/cli.yaml");
  assert.equal(
    configPath(envOf({ XDG_CONFIG_HOME: "relative", HOME: "/h" })),
    "/h/.config/qarax/cli.yaml",
  );
  assert.equal(configPath(envOf({ HOME: "/h" })), "/h/.config/qarax/cli.yaml");
  assert.throws(() => configPath(envOf({})), InvalidArgumentError);
});

Deno.test("the config file is written 0600 in a 0700 directory and read back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-cli-config-" });
  try {
    const path = `${dir}/qarax/cli.yaml`;
    await writeCliFile(path, { url: "http://a:8000", tokens: { "http://a:8000": "s3cret" } });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/qarax`)).mode! & 0o777, 0o700);
    const warnings: string[] = [];
    assert.deepEqual(await readCliFile(path, (m) => warnings.push(m)), {
      url: "http://a:8000",
      tokens: { "http://a:8000": "s3cret" },
    });
    assert.equal(warnings.length, 0);
    // A file others can read is used, with a warning.
    await Deno.chmod(path, 0o644);
    await readCliFile(path, (m) => warnings.push(m));
    assert.match(warnings[0], /readable by others; run: chmod 600/);
    assert.equal(await readCliFile(`${dir}/missing.yaml`), undefined);
    await Deno.writeTextFile(path, "url: [unclosed");
    await assert.rejects(readCliFile(path), /not valid YAML/);
    await Deno.writeTextFile(path, "server: http://x\n");
    await assert.rejects(readCliFile(path), /cli\.yaml: .*server/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
