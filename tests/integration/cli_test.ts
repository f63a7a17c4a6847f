/**
 * The `qarax` CLI run as a subprocess against a real control plane: CRUD across resources,
 * names for ids, JSON output, errors with request ids and exit codes, and authentication
 * by flag, environment and the file `qarax login` writes.
 */
import assert from "node:assert/strict";
import { sha256Hex } from "../../control/api/middleware/auth.ts";
import { expectCode, qaraxFor, runQarax, startControlPlane } from "../support/cli.ts";
import { freePort } from "../support/process.ts";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

Deno.test("qarax CLI: version, help and usage errors", async () => {
  const v = expectCode(await runQarax(["--version"]), 0, "--version");
  assert.match(v.stdout, /^qarax \d+\.\d+\.\d+ \(deno 2\.9\.6, commit \S+\)\n$/);
  const vj = expectCode(await runQarax(["version", "-o", "json"]), 0, "version -o json").json();
  assert.equal(vj.deno, "2.9.6");

  const help = expectCode(await runQarax(["--help"]), 0, "--help");
  assert.match(help.stdout, /Commands:\n {2}host …/);
  assert.match(help.stdout, /serve +run the control plane/);
  assert.match(help.stdout, /Exit codes:\n {2}0 +success/);
  assert.match(
    expectCode(await runQarax(["vm", "create", "--help"]), 0, "help").stdout,
    /--memory SIZE/,
  );
  assert.match(
    expectCode(await runQarax(["help", "vm", "start"]), 0, "help vm start").stdout,
    /--wait/,
  );

  assert.match(
    expectCode(await runQarax(["vm", "snapshot", "--help"]), 0, "help snapshot").stdout,
    /create[\s\S]*list[\s\S]*delete/,
  );
  assert.match(
    expectCode(await runQarax(["vm", "snapshot", "create", "--help"]), 0, "help create").stdout,
    /--pool NAME\|ID/,
  );
  assert.match(
    expectCode(await runQarax(["vm", "restore", "--help"]), 0, "help restore").stdout,
    /--snapshot NAME\|ID/,
  );
  assert.match(
    expectCode(await runQarax(["vm", "template", "--help"]), 0, "help vm template").stdout,
    /--name NAME/,
  );

  // Nothing to do is a usage error, with the help on stderr.
  assert.match(expectCode(await runQarax([]), 2, "no command").stderr, /Usage: qarax <command>/);
  assert.match(
    expectCode(await runQarax(["vm", "crate"]), 2, "typo").stderr,
    /unknown command "crate" for "qarax vm"; did you mean "create"\?/,
  );
  assert.match(
    expectCode(await runQarax(["vm", "list", "--colour"]), 2, "bad flag").stderr,
    /unknown flag '--colour' \(see `qarax vm list --help`\)/,
  );
  assert.match(
    expectCode(await runQarax(["vm", "list", "-o", "yaml"]), 2, "bad output").stderr,
    /--output: expected table or json/,
  );
  assert.match(
    expectCode(await runQarax(["--port", "9000"]), 2, "server flag first").stderr,
    /missing a command before --port; server flags go after `qarax serve`/,
  );
  assert.match(
    expectCode(await runQarax(["vmm", "list", "--status", "x"]), 2, "typo with flags").stderr,
    /unknown command "vmm" for "qarax"; did you mean "vm"\?/,
  );
  // `serve --help` still belongs to the server.
  assert.match(
    expectCode(await runQarax(["serve", "--help"]), 0, "serve --help").stdout,
    /--database-url/,
  );
});

Deno.test("qarax CLI: resources end to end, by name, as tables and JSON", async (t) => {
  await using cp = await startControlPlane();
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[]) => expectCode(await qarax(args), 0, args.join(" "));
  try {
    await t.step("catalog: pool, objects, boot source, instance type, network", async () => {
      assert.match(
        (await ok(["pool", "create", "local", "--path", "/var/lib/qarax/pools/local"])).stdout,
        new RegExp(`^storage pool local created \\(id ${UUID.source}\\)\n$`),
      );
      await ok([
        "disk",
        "register",
        "vmlinux",
        "--pool",
        "local",
        "--type",
        "kernel",
        "--path",
        "images/vmlinux",
      ]);
      await ok([
        "disk",
        "register",
        "root",
        "--pool",
        "local",
        "--type",
        "disk",
        "--path",
        "vms/root.img",
        "--size",
        "2GiB",
      ]);
      await ok([
        "boot-source",
        "create",
        "linux",
        "--kernel",
        "vmlinux",
        "--params",
        "console=ttyS0",
      ]);
      await ok(["instance-type", "create", "small", "--vcpus", "1", "--memory", "1GiB"]);
      await ok(["network", "create", "lan", "--subnet", "10.10.0.0/24", "--gateway", "10.10.0.1"]);
      const disks = (await ok(["disk", "list"])).stdout;
      assert.match(disks, /^ID +NAME +POOL +TYPE +FORMAT +SIZE +STATUS +HOST +PATH\n/);
      assert.match(disks, /root +local +disk +raw +2 GiB +ready/);
      const bs = (await ok(["boot-source", "list"])).stdout;
      assert.match(bs, /linux +kernel +vmlinux +- +- +console=ttyS0/);
    });

    await t.step("vm create with names for every reference, then list and get", async () => {
      const created = (await ok([
        "vm",
        "create",
        "web-1",
        "--instance-type",
        "small",
        "--boot-source",
        "linux",
        "--disk",
        "root,boot=1",
        "--network",
        "lan,ip=10.10.0.10",
        "--tag",
        "web",
        "-o",
        "json",
      ])).json();
      assert.equal(created.memory_size, 1024 ** 3);
      assert.equal(created.status, "created");

      const list = (await ok(["vm", "list"])).stdout.split("\n");
      assert.match(list[0], /^ID +NAME +STATUS +HOST +VCPUS +MEMORY +TAGS +AGE$/);
      assert.match(list[1], new RegExp(`^${created.id} +web-1 +created +- +1 +1 GiB +web +\\d+s$`));

      // -o json is the API's own document, byte for byte in content.
      const api = await (await fetch(`${cp.url}/v1/vms/${created.id}`)).json();
      assert.deepEqual((await ok(["vm", "get", "web-1", "-o", "json"])).json(), api);
      assert.deepEqual((await ok(["vm", "list", "-o", "json"])).json(), {
        items: [api],
        next_cursor: null,
      });

      const shown = (await ok(["vm", "get", "web-1"])).stdout;
      assert.match(shown, /^memory_size +1 GiB \(1073741824\)$/m);
      assert.match(shown, /Disks:\n +DEVICE +OBJECT +BOOT +READ-ONLY\n +disk0 +root +1 +no/);
      assert.match(
        shown,
        /NICs:\n +DEVICE +NETWORK +MAC +IP +MTU\n +net0 +lan +[0-9a-f:]{17} +10\.10\.0\.10/,
      );
    });

    await t.step("update, devices, IPs", async () => {
      await ok(["vm", "update", "web-1", "--memory", "2GiB", "--description", "front end"]);
      const vm = (await ok(["vm", "get", "web-1", "-o", "json"])).json();
      assert.deepEqual([vm.memory_size, vm.description], [2 * 1024 ** 3, "front end"]);
      assert.match(
        (await ok(["vm", "nic", "add", "web-1", "lan"])).stdout,
        /^nic net1 added to vm web-1 \(10\.10\.0\.2\)\n$/,
      );
      assert.match((await ok(["network", "ips", "lan"])).stdout, /10\.10\.0\.10 +web-1 +net0/);
      await ok(["vm", "nic", "remove", "web-1", "net1"]);
      assert.doesNotMatch((await ok(["vm", "nic", "list", "web-1"])).stdout, /net1/);
      assert.match((await ok(["vm", "disk", "list", "web-1"])).stdout, /disk0 +root/);
      assert.match(
        expectCode(await qarax(["vm", "update", "web-1"]), 2, "empty update").stderr,
        /nothing to change: give at least one of --name, --description/,
      );
    });

    await t.step("vm template: a template from a VM, and a VM from it", async () => {
      assert.match(
        (await ok(["vm", "template", "web-1", "--name", "web"])).stdout,
        new RegExp(`^template web created from vm web-1 \\(id ${UUID.source}\\)\n$`),
      );
      const tpl = (await ok(["template", "get", "web", "-o", "json"])).json();
      assert.deepEqual([tpl.memory_size, tpl.tags, tpl.nics.length], [2 * 1024 ** 3, ["web"], 1]);
      assert.match(
        expectCode(await qarax(["vm", "template", "web-1"]), 2, "no --name").stderr,
        /--name NAME is required/,
      );
      const vm = (await ok(["vm", "create", "web-9", "--template", "web", "-o", "json"])).json();
      assert.equal(vm.memory_size, 2 * 1024 ** 3);
      await ok(["template", "delete", "web"]);
    });

    await t.step("hosts: add, maintenance, labels, remove", async () => {
      await ok([
        "host",
        "add",
        "hv1",
        "--address",
        "10.0.0.11",
        "--label",
        "zone=a",
        "--label",
        "rack=7",
      ]);
      assert.match(
        (await ok(["host", "list"])).stdout,
        /hv1 +10\.0\.0\.11:50051 .* rack=7,zone=a|hv1 +10\.0\.0\.11:50051 .* zone=a,rack=7/,
      );
      assert.match(
        (await ok(["host", "maintenance", "enter", "hv1"])).stdout,
        /^host hv1 is maintenance\n$/,
      );
      assert.match((await ok(["host", "maintenance", "exit", "hv1"])).stdout, /^host hv1 is up\n$/);
      await ok(["host", "update", "hv1", "--label", "zone-"]);
      assert.deepEqual((await ok(["host", "get", "hv1", "-o", "json"])).json().labels, {
        rack: "7",
      });
      const res = (await ok(["host", "resources", "hv1", "-o", "json"])).json();
      assert.equal(res.vm_count, 0);
      await ok(["host", "remove", "hv1"]);
      assert.match(
        expectCode(await qarax(["host", "get", "hv1"]), 1, "gone").stderr,
        /no host named "hv1"/,
      );
    });

    await t.step("names: unknown and ambiguous are clear errors; --pool narrows", async () => {
      await ok(["pool", "create", "other", "--path", "/srv/other"]);
      await ok([
        "disk",
        "register",
        "root",
        "--pool",
        "other",
        "--type",
        "disk",
        "--path",
        "root.img",
      ]);
      const amb = expectCode(await qarax(["disk", "get", "root"]), 2, "ambiguous");
      assert.match(
        amb.stderr,
        new RegExp(
          `2 storage objects are named "root" \\(${UUID.source}, ${UUID.source}\\); pass an id or narrow with --pool`,
        ),
      );
      const narrowed = (await ok(["disk", "get", "root", "--pool", "other", "-o", "json"])).json();
      assert.equal(narrowed.path, "root.img");
      assert.equal((await ok(["disk", "get", narrowed.id, "-o", "json"])).json().id, narrowed.id);
      assert.match(
        expectCode(await qarax(["vm", "start", "ghost"]), 1, "unknown").stderr,
        /^qarax: no vm named "ghost"\n$/,
      );
      // `vm snapshot create --pool` resolves the pool by name before asking the server.
      assert.match(
        expectCode(
          await qarax(["vm", "snapshot", "create", "web-1", "--pool", "ghost"]),
          1,
          "unknown pool",
        ).stderr,
        /^qarax: no storage pool named "ghost"\n$/,
      );
      const stopped = await qarax(["vm", "snapshot", "create", "web-1", "--pool", "other"]);
      assert.match(expectCode(stopped, 1, "not running").stderr, /HTTP 409/);
    });

    await t.step(
      "errors carry the server's message, bad fields (as flags) and request id",
      async () => {
        const bad = expectCode(
          await qarax(["vm", "create", "bad name", "--vcpus", "0", "--memory", "1000"]),
          1,
          "422",
        );
        assert.match(bad.stderr, /^qarax: invalid request: name, boot_vcpus, memory_size\n/);
        assert.match(bad.stderr, / {2}- name \(<name>\): 1-63 characters/);
        assert.match(bad.stderr, / {2}- boot_vcpus \(--vcpus\): Too small/);
        assert.match(
          bad.stderr,
          new RegExp(`\\(code: invalid_argument, HTTP 422, request id: ${UUID.source}\\)`),
        );
        const dup = expectCode(await qarax(["vm", "create", "web-1"]), 1, "duplicate");
        assert.match(dup.stderr, /code: already_exists, HTTP 409, request id:/);
        // A bad value never reaches the server.
        const usage = expectCode(
          await qarax(["vm", "create", "web-2", "--memory", "2gigs"]),
          2,
          "size",
        );
        assert.match(usage.stderr, /--memory: invalid size "2gigs"/);
        assert.equal(expectCode(await qarax(["vm", "get", "web-2"]), 1, "not created").code, 1);
        // A refused resize names the flag, not the API's field (desired_vcpus, desired_ram).
        const resize = expectCode(
          await qarax(["vm", "resize", "web-1", "--vcpus", "99"]),
          1,
          "vcpus",
        );
        assert.match(resize.stderr, /^qarax: --vcpus: must be from 1 to max_vcpus \(\d+\)\n/);
        assert.doesNotMatch(resize.stderr, /desired_vcpus/);
        const ram = expectCode(
          await qarax(["vm", "resize", "web-1", "--memory", "64MiB"]),
          1,
          "ram",
        );
        assert.match(
          ram.stderr,
          /^qarax: --memory: must be a whole number of MiB, at least 128 MiB\n/,
        );
        const deploy = expectCode(await qarax(["host", "deploy", "nosuch"]), 1, "deploy");
        assert.match(deploy.stderr, /no host named "nosuch"/);
        // Deploy flags map onto the API's fields (the server checks references and paths).
        expectCode(await qarax(["host", "add", "dep1", "--address", "10.9.9.9"]), 0, "add dep1");
        const badRef = expectCode(
          await qarax([
            "host",
            "deploy",
            "dep1",
            "--image",
            "r.example/h:1",
            "--ssh-key",
            "vault://k",
          ]),
          1,
          "bad ssh key ref",
        );
        assert.match(badRef.stderr, /ssh_key_ref \(--ssh-key\): expected env:\/\/NAME/);
        const noBinary = expectCode(
          await qarax(["host", "deploy", "dep1", "--mode", "binary", "--binary", "/nonexistent/n"]),
          1,
          "binary not a file",
        );
        assert.match(noBinary.stderr, /^qarax: --binary: not a file on the control plane host\n/);
        expectCode(await qarax(["host", "remove", "dep1"]), 0, "remove dep1");
      },
    );

    await t.step("jobs: a queued disk creation is listed, shown and waited for", async () => {
      const queued = await ok(["disk", "create", "scratch", "--pool", "local", "--size", "1GiB"]);
      const m = new RegExp(`^job (${UUID.source}) disk_create (\\w+)`).exec(queued.stdout);
      assert.ok(m, queued.stdout);
      assert.match(queued.stdout, new RegExp(`follow it with: qarax job wait ${m[1]}`));
      const jobs = (await ok(["job", "list", "-o", "json"])).json();
      assert.deepEqual(jobs.items.map((j: { id: string }) => j.id), [m[1]]);
      assert.match((await ok(["job", "list"])).stdout, new RegExp(`${m[1]} +disk_create`));
      assert.equal((await ok(["job", "get", m[1], "-o", "json"])).json().type, "disk_create");
      assert.match(
        expectCode(await qarax(["job", "get", "latest"]), 2, "job name").stderr,
        /not a job id/,
      );
    });

    await t.step("audit log and delete", async () => {
      const audit = (await ok(["audit", "list", "--resource-type", "vm", "-o", "json"])).json();
      assert.ok(audit.items.some((a: { action: string }) => a.action === "create"));
      await ok(["vm", "delete", "web-1", "--wait"]);
      await ok(["vm", "delete", "web-9", "--wait"]);
      assert.equal(expectCode(await qarax(["vm", "get", "web-1"]), 1, "deleted").code, 1);
      assert.match((await ok(["vm", "list"])).stderr, /^No vms found\.\n$/);
    });

    await t.step("an unreachable server is exit 3", async () => {
      const r = expectCode(
        await qarax(["vm", "list"], { env: { QARAX_URL: `http://127.0.0.1:${freePort()}` } }),
        3,
        "unreachable",
      );
      assert.match(r.stderr, /cannot reach qarax at http:\/\/127\.0\.0\.1:\d+: .*refused/i);
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("qarax CLI: tokens from --token, QARAX_TOKEN and the login file", async (t) => {
  const secret = "s3cret-token";
  await using cp = await startControlPlane({
    auth: { enabled: true, tokens: [{ name: "ops", sha256: await sha256Hex(secret) }] },
  });
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-auth-" });
  const qarax = qaraxFor(cp.url, home);
  const file = `${home}/qarax/cli.yaml`;
  try {
    await t.step("no token or a wrong one: exit 4 with the server's message", async () => {
      const none = expectCode(await qarax(["vm", "list"]), 4, "no token");
      assert.match(
        none.stderr,
        /^qarax: missing bearer token\n {2}\(code: unauthenticated, HTTP 401, request id: /,
      );
      expectCode(await qarax(["vm", "list", "--token", "wrong"]), 4, "wrong token");
    });

    await t.step("flag and environment", async () => {
      expectCode(await qarax(["vm", "list", "--token", secret]), 0, "--token");
      expectCode(await qarax(["vm", "list"], { env: { QARAX_TOKEN: secret } }), 0, "QARAX_TOKEN");
      // The flag wins over the environment.
      expectCode(
        await qarax(["vm", "list", "--token", "wrong"], { env: { QARAX_TOKEN: secret } }),
        4,
        "flag wins",
      );
    });

    await t.step("login checks the token before saving it, 0600", async () => {
      expectCode(await qarax(["login", "--token", "wrong"]), 4, "login wrong");
      await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
      const login = expectCode(await qarax(["login", "--token", secret]), 0, "login");
      assert.equal(login.stdout, `Logged in to ${cp.url}; saved to ${file}\n`);
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      assert.match(await Deno.readTextFile(file), new RegExp(`url: ${cp.url}\n`));
    });

    await t.step("the saved token is used, and audited as its name", async () => {
      expectCode(
        await qarax(["network", "create", "lan", "--subnet", "10.1.0.0/24"]),
        0,
        "create with file token",
      );
      const audit = expectCode(
        await qarax(["audit", "list", "--actor", "ops", "-o", "json"]),
        0,
        "audit",
      ).json();
      assert.equal(audit.items[0].summary.name, "lan");
      // Without QARAX_URL the saved URL is used too.
      expectCode(
        await runQarax(["network", "get", "lan"], { env: { XDG_CONFIG_HOME: home } }),
        0,
        "saved url",
      );
      // The environment still wins over the file.
      expectCode(await qarax(["vm", "list"], { env: { QARAX_TOKEN: "wrong" } }), 4, "env wins");
    });

    await t.step("--token-stdin, logout", async () => {
      expectCode(await qarax(["logout"]), 0, "logout");
      expectCode(await qarax(["vm", "list"]), 4, "after logout");
      expectCode(
        await qarax(["login", "--token-stdin"], { stdin: `${secret}\n` }),
        0,
        "token-stdin",
      );
      expectCode(await qarax(["vm", "list"]), 0, "after token-stdin");
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
