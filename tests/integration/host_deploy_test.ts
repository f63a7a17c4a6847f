/**
 * `POST /v1/hosts/{id}/deploy` end to end: a real sshd in a network namespace (stand-in
 * `bootc` and `systemctl` recording their calls) and a fake node in the same namespace on the
 * address the host record names. Both modes, the pinned host key that changes, and credential
 * references that are wrong. The sshd tests need root (they always run when CI=true).
 */
import assert from "node:assert/strict";
import { createTestApi, fastConfig, type TestApi, testConfig } from "../support/api.ts";
import { startFakeNode } from "../support/fake_node.ts";
import { netnsSupport } from "../support/netns.ts";
import { startTestSshHost, type TestSshHost } from "../support/sshd.ts";

const TOKEN = "deploy-test-node-token";
const IMAGE = "registry.example/qarax-host:0.1.0";
const UNIT = new URL("../../deployments/systemd/qarax-node.service", import.meta.url).pathname;
const NODE_YAML = new URL("../../deployments/host/node.yaml", import.meta.url).pathname;

const support = netnsSupport();
if (!support.ok) {
  console.warn(`skipping SSH deployment tests: ${support.reason} (CI=true forces them)`);
}

/** An active API (job workers on) whose data directory is a scratch dir. */
async function deployApi(dataDir: string): Promise<TestApi> {
  const base = testConfig();
  return await createTestApi(
    fastConfig({
      application: { ...base.application, data_dir: dataDir },
      nodes: { ...base.nodes, auth_token: TOKEN },
    }),
    { active: true },
  );
}

/** The stand-in host with a fake node listening on its address, registered as `name`. */
async function hostWithNode(api: TestApi, ssh: TestSshHost, name: string) {
  const fake = await startFakeNode(
    { hostname: name, token: TOKEN, totalCpus: 6, listen: ssh.address },
    { netns: ssh.ns.name },
  );
  const host = await api.create("/v1/hosts", { name, address: ssh.address, port: fake.port });
  return { fake, host };
}

function noSecretsIn(api: TestApi, key: string, job: unknown): void {
  const keyLine = key.split("\n")[1];
  assert.ok(keyLine.length > 20);
  assert.ok(!JSON.stringify(job).includes(keyLine), "key material in the job");
  assert.ok(!JSON.stringify(job).includes(TOKEN), "node token in the job");
  for (const line of api.logs) {
    assert.ok(!line.includes(keyLine), `key material logged: ${line}`);
    assert.ok(!line.includes(TOKEN), `node token logged: ${line}`);
  }
}

Deno.test({
  name: "host deploy (bootc): switch, reboot, wait, init; a changed host key fails the job",
  ignore: !support.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const data = await Deno.makeTempDir({ prefix: "qarax-data-" });
    try {
      await using ssh = await startTestSshHost();
      await using api = await deployApi(data);
      const { fake, host } = await hostWithNode(api, ssh, "hv-bootc");
      await using _fake = fake;
      const request = {
        mode: "bootc",
        image: IMAGE,
        ssh_port: ssh.port,
        ssh_key_ref: `file://${ssh.clientKeyFile}`,
        timeout_s: 30,
      };

      await t.step(
        "202 + job; the host switches, reboots, comes back and is initialised",
        async () => {
          const res = await api.post(`/v1/hosts/${host.id}/deploy`, request);
          assert.equal(res.status, 202, JSON.stringify(res.body));
          assert.equal(res.body.type, "host_deploy");
          assert.match(res.headers.get("location")!, /^\/v1\/jobs\//);
          assert.equal((await api.get(`/v1/hosts/${host.id}`)).body.status, "installing");
          const job = await api.awaitJob(res, 60);
          assert.equal(job.status, "succeeded", JSON.stringify(job.error) + ssh.output());
          assert.deepEqual(job.result.mode, "bootc");
          const calls = (await ssh.calls()).filter((c) => !c.startsWith("bootc status"));
          assert.deepEqual(calls, [`bootc switch ${IMAGE}`, "systemctl reboot"]);
          const h = (await api.get(`/v1/hosts/${host.id}`)).body;
          assert.equal(h.status, "up");
          assert.equal(h.total_cpus, 6);
          // The node token went to node.env (0600), through stdin.
          const env = `${ssh.root}/etc/qarax/node.env`;
          assert.equal(await Deno.readTextFile(env), `QARAX_NODE__AUTH_TOKEN=${TOKEN}\n`);
          assert.equal((await Deno.stat(env)).mode! & 0o777, 0o600);
          // The host key is pinned under the data directory.
          const known = await Deno.readTextFile(`${data}/known_hosts`);
          assert.match(
            known,
            new RegExp(
              `^\\[${ssh.address.replaceAll(".", "\\.")}\\]:${ssh.port} ssh-ed25519 `,
              "m",
            ),
          );
          noSecretsIn(api, ssh.clientKey, job);
        },
      );

      await t.step("again: the host follows the image, so bootc upgrade, then reboot", async () => {
        const job = await api.awaitJob(await api.post(`/v1/hosts/${host.id}/deploy`, request), 60);
        assert.equal(job.status, "succeeded", JSON.stringify(job.error));
        const calls = (await ssh.calls()).filter((c) => !c.startsWith("bootc status"));
        assert.deepEqual(calls.slice(2), ["bootc upgrade", "systemctl reboot"]);
      });

      await t.step("a regenerated host key fails the job, naming the key change", async () => {
        await ssh.regenerateHostKey();
        const before = (await ssh.calls()).length;
        const job = await api.awaitJob(await api.post(`/v1/hosts/${host.id}/deploy`, request), 60);
        assert.equal(job.status, "failed");
        assert.equal(job.error.code, "failed_precondition");
        assert.match(
          job.error.message,
          /SSH host key of host hv-bootc .* changed since it was first trusted/,
        );
        assert.match(job.error.message, /ssh-keygen -R/);
        assert.equal((await ssh.calls()).length, before, "nothing ran on the host");
        const h = (await api.get(`/v1/hosts/${host.id}`)).body;
        assert.equal(h.status, "installation_failed");
        assert.match(h.status_reason, /host key/);
      });
    } finally {
      await Deno.remove(data, { recursive: true });
    }
  },
});

Deno.test({
  name: "host deploy (binary): copies the node, config and unit, restarts the service, inits",
  ignore: !support.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const data = await Deno.makeTempDir({ prefix: "qarax-data-" });
    const build = await Deno.makeTempDir({ prefix: "qarax-build-" });
    const KEY_VAR = `QARAX_TEST_DEPLOY_KEY_${crypto.randomUUID().slice(0, 8).toUpperCase()}`;
    try {
      await using ssh = await startTestSshHost();
      await using api = await deployApi(data);
      const { fake, host } = await hostWithNode(api, ssh, "hv-binary");
      await using _fake = fake;
      const binary = `${build}/qarax-node`;
      await Deno.writeTextFile(binary, "#!/bin/sh\necho fake qarax-node\n");
      Deno.env.set(KEY_VAR, ssh.clientKey);

      const res = await api.post(`/v1/hosts/${host.id}/deploy`, {
        mode: "binary",
        binary_path: binary,
        ssh_user: "root",
        ssh_port: ssh.port,
        ssh_key_ref: `env://${KEY_VAR}`,
        timeout_s: 30,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await api.awaitJob(res, 60);
      assert.equal(job.status, "succeeded", JSON.stringify(job.error) + ssh.output());
      assert.deepEqual(await ssh.calls(), [
        "systemctl daemon-reload",
        "systemctl enable qarax-node.service",
        "systemctl restart qarax-node.service",
      ]);
      const r = ssh.root;
      assert.equal(
        await Deno.readTextFile(`${r}/usr/bin/qarax-node`),
        await Deno.readTextFile(binary),
      );
      assert.equal((await Deno.stat(`${r}/usr/bin/qarax-node`)).mode! & 0o777, 0o755);
      assert.equal(
        await Deno.readTextFile(`${r}/etc/systemd/system/qarax-node.service`),
        await Deno.readTextFile(UNIT),
      );
      assert.equal(
        await Deno.readTextFile(`${r}/etc/qarax/node.yaml`),
        await Deno.readTextFile(NODE_YAML),
      );
      assert.equal(
        await Deno.readTextFile(`${r}/etc/qarax/node.env`),
        `QARAX_NODE__AUTH_TOKEN=${TOKEN}\n`,
      );
      // The staging directory is gone and no temp key file is left behind.
      assert.equal(await Deno.stat(`/var/tmp/qarax-deploy-${job.id}`).catch(() => null), null);
      for await (const e of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
        assert.ok(!e.name.startsWith("qarax-ssh-key-") || !(await isOurs(e.name, ssh.clientKey)));
      }
      const h = (await api.get(`/v1/hosts/${host.id}`)).body;
      assert.equal(h.status, "up");
      assert.equal(h.total_cpus, 6);
      noSecretsIn(api, ssh.clientKey, job);
    } finally {
      Deno.env.delete(KEY_VAR);
      await Deno.remove(data, { recursive: true });
      await Deno.remove(build, { recursive: true });
    }
  },
});

async function isOurs(name: string, key: string): Promise<boolean> {
  const text = await Deno.readTextFile(`${Deno.env.get("TMPDIR") ?? "/tmp"}/${name}`).catch(() =>
    ""
  );
  return text.trim() === key.trim();
}

Deno.test("host deploy: invalid requests are 422; a reference that resolves to nothing fails the job", async (t) => {
  const data = await Deno.makeTempDir({ prefix: "qarax-data-" });
  try {
    await using api = await deployApi(data);
    const host = await api.create("/v1/hosts", { name: "hv-refs", address: "127.0.0.1" });
    const deploy = (body: unknown) => api.post(`/v1/hosts/${host.id}/deploy`, body);

    await t.step(
      "422: bad reference, missing image, binary_path not a file, password field",
      async () => {
        for (
          const ref of [
            "vault://x",
            "env://",
            "env://A-B",
            "file://relative",
            "file:///a/../b",
            "/etc/key",
          ]
        ) {
          const res = await deploy({ image: IMAGE, ssh_key_ref: ref });
          assert.equal(res.status, 422, ref);
          assert.equal(res.body.details[0].field, "ssh_key_ref", ref);
        }
        const noImage = await deploy({ mode: "bootc" });
        assert.equal(noImage.status, 422);
        assert.equal(noImage.body.details[0].field, "image");
        const noFile = await deploy({ mode: "binary", binary_path: `${data}/nope` });
        assert.equal(noFile.status, 422);
        assert.match(noFile.body.message, /binary_path: not a file on the control plane host/);
        const password = await deploy({ image: IMAGE, ssh_password_ref: "env://X" });
        assert.equal(password.status, 422);
        assert.equal((await api.get(`/v1/hosts/${host.id}`)).body.status, "unknown");
      },
    );

    await t.step("an unset env:// variable fails the job with a clear message", async () => {
      const res = await deploy({ image: IMAGE, ssh_key_ref: "env://QARAX_TEST_NO_SUCH_KEY_VAR" });
      assert.equal(res.status, 202);
      assert.equal(res.body.params.ssh_key_ref, "env://QARAX_TEST_NO_SUCH_KEY_VAR");
      const job = await api.awaitJob(res, 30);
      assert.equal(job.status, "failed");
      assert.match(
        job.error.message,
        /ssh_key_ref env:\/\/QARAX_TEST_NO_SUCH_KEY_VAR: the control plane's environment has no QARAX_TEST_NO_SUCH_KEY_VAR/,
      );
      assert.equal((await api.get(`/v1/hosts/${host.id}`)).body.status, "installation_failed");
    });

    await t.step("an unreadable file:// key fails the job naming the file", async () => {
      const job = await api.awaitJob(
        await deploy({ image: IMAGE, ssh_key_ref: `file://${data}/missing_key` }),
        30,
      );
      assert.equal(job.status, "failed");
      assert.match(
        job.error.message,
        /cannot read .*missing_key on the control plane host \(NotFound\)/,
      );
    });
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
