import assert from "node:assert/strict";
import { ConfigError, envPath, loadConfig, loadControlConfig, loadNodeConfig } from "./load.ts";
import { REDACTED, redactUrl, redactValue } from "./redact.ts";

const noEnv = {};

Deno.test("defaults come from base.yaml overlaid by local.yaml", () => {
  const { config, environment, sources } = loadConfig({ env: noEnv });
  assert.equal(environment, "local");
  assert.equal(config.application.port, 8000);
  assert.equal(sources.get("application.port"), "configuration/base.yaml");
  assert.equal(config.application.data_dir, ".data");
  assert.equal(sources.get("application.data_dir"), "configuration/local.yaml");
});

Deno.test("precedence: base < environment file < operator file < env var < flag", () => {
  const files: Record<string, string> = { "/etc/q.yaml": "log:\n  level: warn\n" };
  const readFile = (p: string) => files[p];
  const layer = (env: Record<string, string>, flags = false) =>
    loadConfig({
      env,
      readFile,
      flags: flags ? [{ path: "log.level", value: "debug", flag: "--log-level" }] : [],
    });
  // base says info, production.yaml does not touch level but sets format json.
  assert.equal(layer({ APP_ENVIRONMENT: "production" }).config.log.format, "json");
  assert.equal(layer({}).config.log.level, "info");
  const f = layer({ QARAX_CONFIG: "/etc/q.yaml" });
  assert.equal(f.config.log.level, "warn");
  assert.equal(f.sources.get("log.level"), "/etc/q.yaml");
  const e = layer({ QARAX_CONFIG: "/etc/q.yaml", QARAX_LOG__LEVEL: "error" });
  assert.equal(e.config.log.level, "error");
  assert.equal(e.sources.get("log.level"), "env QARAX_LOG__LEVEL");
  const g = layer({ QARAX_CONFIG: "/etc/q.yaml", QARAX_LOG__LEVEL: "error" }, true);
  assert.equal(g.config.log.level, "debug");
  assert.equal(g.sources.get("log.level"), "flag --log-level");
});

Deno.test("conventional variables: DATABASE_URL and PORT", () => {
  const { config, sources } = loadControlConfig({
    env: { DATABASE_URL: "postgres://u:pw@db/q", PORT: "9100" },
  });
  assert.equal(config.database.url, "postgres://u:pw@db/q");
  assert.equal(config.application.port, 9100);
  assert.equal(sources.get("application.port"), "env PORT");
});

Deno.test("env values are typed by the schema", () => {
  const { config } = loadConfig({
    env: {
      QARAX_AUTH__ENABLED: "yes",
      QARAX_SCHEDULING__CPU_OVERCOMMIT_RATIO: "2.5",
      QARAX_AUTH__TOKENS: `[{name: ops, sha256: "${"a".repeat(64)}"}]`,
      QARAX_NODE__AUTH_TOKEN: "0123", // a string setting stays a string
    },
  });
  assert.equal(config.auth.enabled, true);
  assert.equal(config.scheduling.cpu_overcommit_ratio, 2.5);
  assert.deepEqual(config.auth.tokens, [{ name: "ops", sha256: "a".repeat(64) }]);
  assert.equal(config.node.auth_token, "0123");
});

Deno.test("a wrong type names the key, the source and what was expected", () => {
  const e = captured(() => loadConfig({ env: { QARAX_APPLICATION__PORT: "eighty" } }));
  assert.equal(e.key, "application.port");
  assert.equal(e.source, "env QARAX_APPLICATION__PORT");
  assert.match(
    e.message,
    /^invalid configuration: application\.port = "eighty" \(from env QARAX_APPLICATION__PORT\): expected number/,
  );
  assert.equal(e.message.split("\n").length, 1);
});

Deno.test("a value out of range in a file names the file", () => {
  const e = captured(() =>
    loadConfig({ env: { QARAX_CONFIG: "/q.yaml" }, readFile: () => "node:\n  port: 70000\n" })
  );
  assert.equal(e.key, "node.port");
  assert.equal(e.source, "/q.yaml");
  assert.match(e.message, /70000/);
});

Deno.test("unknown keys are refused, in files and in QARAX_ variables", () => {
  const f = captured(() =>
    loadConfig({ env: { QARAX_CONFIG: "/q.yaml" }, readFile: () => "log:\n  levle: debug\n" })
  );
  assert.equal(f.key, "log.levle");
  assert.equal(f.source, "/q.yaml");
  assert.match(f.message, /unknown key/);
  const v = captured(() => loadConfig({ env: { QARAX_LOG__LEVLE: "debug" } }));
  assert.equal(v.source, "env QARAX_LOG__LEVLE");
});

Deno.test("an unknown APP_ENVIRONMENT is refused naming the variable", () => {
  const e = captured(() => loadConfig({ env: { APP_ENVIRONMENT: "staging" } }));
  assert.equal(e.key, "APP_ENVIRONMENT");
  assert.match(e.message, /expected one of local, production/);
});

Deno.test("typed views per binary", () => {
  const node = loadNodeConfig({ env: { QARAX_NODE__PORT: "50052" } }).config;
  assert.deepEqual(Object.keys(node).sort(), ["log", "node"]);
  assert.equal(node.node.port, 50052);
  const control = loadControlConfig({ env: noEnv }).config;
  assert.ok(!("node" in control));
});

Deno.test("env names map to paths; other variables are ignored", () => {
  assert.equal(envPath("QARAX_NODE__RUNTIME_DIR"), "node.runtime_dir");
  assert.equal(envPath("QARAX_URL"), null);
  assert.equal(envPath("HOME"), null);
});

Deno.test("secrets are redacted when the config is shown", () => {
  const { config } = loadConfig({
    env: {
      DATABASE_URL: "postgres://qarax:hunter2@db:5432/qarax",
      QARAX_NODE__AUTH_TOKEN: "s3cret-token",
    },
  });
  const shown = JSON.stringify(redactValue(config));
  assert.ok(!shown.includes("hunter2"));
  assert.ok(!shown.includes("s3cret-token"));
  assert.ok(shown.includes(`postgres://qarax:${REDACTED}@db:5432/qarax`));
  assert.equal(
    redactUrl("see postgres://a:b@h/x and ok"),
    `see postgres://a:${REDACTED}@h/x and ok`,
  );
  // A bad secret value is not echoed in the error either.
  const e = captured(() =>
    loadConfig({ env: { QARAX_AUTH__TOKENS: `[{name: ops, sha256: "my-secret-value"}]` } })
  );
  assert.equal(e.key, "auth.tokens.0.sha256");
  assert.equal(e.source, "env QARAX_AUTH__TOKENS");
  assert.ok(!e.message.includes("my-secret-value"), e.message);
  assert.ok(e.message.includes(REDACTED));
});

function captured(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}
