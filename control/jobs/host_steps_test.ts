/** The `host_deploy` steps on their own: scripts, bootc status, and runs against a fake shell. */
import assert from "node:assert/strict";
import { createTestApi, fastConfig, testConfig } from "../../tests/support/api.ts";
import { addFakeHost, claimedRun } from "../../tests/support/orchestration.ts";
import type { CommandResult } from "../../shared/cmd/run.ts";
import type { RemoteShell } from "../nodes/ssh.ts";
import {
  asRoot,
  bootedTarget,
  type Connect,
  hostDeployPlan,
  installScript,
  knownHostsFile,
  nodeEnvScript,
  parseBootcStatus,
} from "./host_steps.ts";
import { finishJob } from "./queue.ts";

const IMAGE = "registry.example/qarax-host:0.2.0";

function status(spec: string | null, booted: [string, string] | null, staged?: [string, string]) {
  const entry = (e?: [string, string] | null) =>
    e ? { image: { image: { image: e[0], transport: "registry" }, imageDigest: e[1] } } : null;
  return JSON.stringify({
    apiVersion: "org.containers.bootc/v1",
    kind: "BootcHost",
    spec: { image: spec ? { image: spec, transport: "registry" } : null },
    status: { staged: entry(staged), booted: entry(booted), rollback: null },
  });
}

Deno.test("parseBootcStatus reads spec, booted and staged; bootedTarget compares digests", () => {
  const s = parseBootcStatus(status("a:1", ["a:1", "sha256:1"], [IMAGE, "sha256:2"]));
  assert.deepEqual(s, {
    spec: "a:1",
    booted: { image: "a:1", digest: "sha256:1" },
    staged: { image: IMAGE, digest: "sha256:2" },
  });
  assert.equal(bootedTarget(s, IMAGE, "sha256:2"), false);
  assert.equal(
    bootedTarget(parseBootcStatus(status(IMAGE, [IMAGE, "sha256:2"])), IMAGE, "sha256:2"),
    true,
  );
  assert.equal(bootedTarget(parseBootcStatus(status(IMAGE, [IMAGE, "x"])), IMAGE, null), true);
  assert.deepEqual(parseBootcStatus("{}"), { spec: null, booted: null, staged: null });
  assert.throws(() => parseBootcStatus("error: not a bootc host"), /did not print JSON/);
});

Deno.test("scripts: root prefix, sudo for other users, token only through stdin", () => {
  assert.equal(asRoot("root", "bootc upgrade"), "bootc upgrade");
  assert.equal(asRoot("ops", "bootc upgrade"), "sudo -n sh -c 'bootc upgrade'");
  const env = nodeEnvScript(true);
  assert.match(env, /QARAX_DEPLOY_ROOT/);
  assert.match(env, /umask 077/);
  assert.doesNotMatch(env, /QARAX_NODE__AUTH_TOKEN=[^']/);
  assert.match(nodeEnvScript(false), /\|\| : >/);
  const bin = installScript("/var/tmp/qarax-deploy-x", false);
  assert.match(bin, /install -D -m 0755 \/var\/tmp\/qarax-deploy-x\/qarax-node /);
  assert.match(bin, /mv -f "\$\{QARAX_DEPLOY_ROOT:-\}"\/usr\/bin\/qarax-node\.qarax-new/);
  assert.match(bin, /\[ -e "\$\{QARAX_DEPLOY_ROOT:-\}"\/etc\/qarax\/node\.yaml \] \|\|/);
  assert.match(bin, /rm -rf \/var\/tmp\/qarax-deploy-x$/);
  const bundle = installScript("/s", true);
  assert.match(bundle, /qarax-node\.js/);
  assert.match(bundle, /exec deno run .*--allow-ffi \/usr\/local\/lib\/qarax\/qarax-node\.js/);
  assert.equal(knownHostsFile("/var/lib/qarax/"), "/var/lib/qarax/known_hosts");
});

/** A fake host over a fake shell: bootc state in memory, every command recorded. */
function fakeHost() {
  const st = {
    spec: "base:1" as string | null,
    booted: ["base:1", "sha256:0"] as [string, string],
    staged: undefined as [string, string] | undefined,
    n: 0,
  };
  const commands: string[] = [];
  const stdins: string[] = [];
  const ok = (stdout = ""): CommandResult => ({ code: 0, stdout, stderr: "" });
  const shell: RemoteShell = {
    exec(command, options = {}) {
      commands.push(command);
      if (options.stdin) stdins.push(options.stdin);
      if (command.startsWith("bootc status")) {
        return Promise.resolve(ok(status(st.spec, st.booted, st.staged)));
      }
      if (command.startsWith("bootc switch ")) {
        st.spec = command.slice("bootc switch ".length);
        st.staged = [st.spec, `sha256:${++st.n}`];
      } else if (command === "bootc upgrade") st.staged = [st.spec!, `sha256:${++st.n}`];
      else if (command === "systemctl reboot" && st.staged) {
        st.booted = st.staged;
        st.staged = undefined;
      }
      return Promise.resolve(ok());
    },
    copy: () => Promise.reject(new Error("no copies in bootc mode")),
  };
  const connect: Connect = (_ctx, _target, fn) => fn(shell);
  return { st, commands, stdins, connect };
}

Deno.test("bootc plan: switch, token, reboot, wait, init; a resumed job does not reboot twice", async (t) => {
  const base = testConfig();
  await using api = await createTestApi(
    fastConfig({ nodes: { ...base.nodes, auth_token: "tok" } }),
  );
  const h = await addFakeHost(api, "hv1", { token: "tok" });
  await using _fake = h.fake;
  const params = {
    mode: "bootc",
    image: IMAGE,
    ssh_user: "root",
    ssh_port: 22,
    ssh_key_ref: null,
    binary_path: null,
    timeout_s: 10,
  };
  const host: string = h.host.id;

  await t.step("a full run", async () => {
    const fake = fakeHost();
    const run = await claimedRun(api, "host_deploy", host, params);
    const result = await run.run(hostDeployPlan(fake.connect));
    assert.deepEqual(
      fake.commands.filter((c) => !c.startsWith("bootc status")).map((c) => c.split(";")[0]),
      ["uname -m", `bootc switch ${IMAGE}`, "set -e", "systemctl reboot"],
    );
    assert.deepEqual(fake.stdins, ["QARAX_NODE__AUTH_TOKEN=tok\n"]);
    assert.equal(result.status, "up");
    assert.equal(run.data.target_digest, "sha256:1");
    await api.deps.events.transaction((tx, emit) =>
      finishJob(tx, emit, run.claimed, { status: "succeeded", result })
    );
  });

  await t.step("resumed after the reboot: no second switch, no second reboot", async () => {
    const fake = fakeHost();
    fake.st.spec = IMAGE;
    fake.st.booted = [IMAGE, "sha256:7"];
    const run = await claimedRun(api, "host_deploy", host, params);
    run.data.target_digest = "sha256:7";
    run.data.reboot = true;
    run.done.push("connect");
    await run.run(hostDeployPlan(fake.connect));
    const acts = fake.commands.filter((c) => !c.startsWith("bootc status") && !c.startsWith("set"));
    assert.deepEqual(acts, []);
  });
});
