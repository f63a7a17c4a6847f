/**
 * The serial console through a real control plane and a real node agent (the CH emulator as
 * VMM): `GET /v1/vms/{id}/console` and `qarax vm console` print the boot log of a log-console
 * VM; a WebSocket to `/console/attach` and `qarax vm attach` with piped stdin get the login
 * prompt and the echo from a socket-console VM.
 */
import assert from "node:assert/strict";
import {
  expectCode,
  qaraxFor,
  setUpHostWithLinux,
  startControlPlane,
  startTcpAgent,
} from "../support/cli.ts";
import { waitFor } from "../support/process.ts";

const decoder = new TextDecoder();

Deno.test("console: log over HTTP and the CLI, attach over a WebSocket and the CLI", async (t) => {
  await using cp = await startControlPlane();
  await using agent = await startTcpAgent();
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-console-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[], stdin?: string) =>
    expectCode(await qarax(args, { stdin }), 0, args.join(" "));
  try {
    await setUpHostWithLinux(ok, agent);
    await ok(["vm", "create", "logvm", "--boot-source", "linux", "--start", "--wait"]);
    await ok([
      "vm",
      "create",
      "sockvm",
      "--boot-source",
      "linux",
      "--console",
      "socket",
      "--start",
      "--wait",
    ]);
    const logVm = (await ok(["vm", "get", "logvm", "-o", "json"])).json();
    const sockVm = (await ok(["vm", "get", "sockvm", "-o", "json"])).json();
    assert.equal(logVm.console, "log");
    assert.equal(sockVm.console, "socket");

    await t.step(
      "GET /console is the boot log; 409 for a socket console, 404 unknown",
      async () => {
        const text = await waitFor(
          async () => {
            const res = await fetch(`${cp.url}/v1/vms/${logVm.id}/console`);
            const body = await res.text();
            assert.equal(res.status, 200, body);
            assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
            return body.includes("login:") ? body : undefined;
          },
          10_000,
          "the boot log",
        );
        assert.match(text, /Linux version/);
        const sock = await fetch(`${cp.url}/v1/vms/${sockVm.id}/console`);
        assert.equal(sock.status, 409);
        assert.match((await sock.json()).message, /console\/attach/);
        const unknown = await fetch(
          `${cp.url}/v1/vms/00000000-0000-4000-8000-000000000000/console`,
        );
        assert.equal(unknown.status, 404);
        await unknown.body?.cancel();
      },
    );

    await t.step("qarax vm console prints the log", async () => {
      const r = await ok(["vm", "console", "logvm"]);
      assert.match(r.stdout, /Linux version/);
      assert.match(r.stdout, /qarax-emulated login:/);
    });

    await t.step("a WebSocket to /console/attach gets the prompt and the echo", async () => {
      const ws = new WebSocket(
        `${cp.url.replace(/^http/, "ws")}/v1/vms/${sockVm.id}/console/attach`,
      );
      ws.binaryType = "arraybuffer";
      let seen = "";
      let sent = false;
      const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
      const echoed = new Promise<void>((resolve) => {
        ws.onmessage = (e) => {
          seen += typeof e.data === "string" ? e.data : decoder.decode(e.data as ArrayBuffer);
          if (!sent && seen.includes("login: ")) {
            sent = true;
            ws.send("hello-ws\r");
          }
          if (seen.includes("hello-ws\r\n")) resolve();
        };
      });
      await echoed;
      ws.close(1000);
      await closed;
      assert.match(seen, /qarax-emulated login: /);
      // Attach to a log-console VM is refused before the upgrade.
      const refused = await fetch(`${cp.url}/v1/vms/${logVm.id}/console/attach`);
      assert.equal(refused.status, 409);
      assert.match((await refused.json()).message, /no interactive console/);
    });

    await t.step("qarax vm attach with piped stdin echoes it", async () => {
      const r = await ok(["vm", "attach", "sockvm"], "hello-cli\n");
      assert.match(r.stdout, /hello-cli\r\n/);
      const refused = await qarax(["vm", "attach", "logvm"]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /no interactive console/);
    });

    await ok(["vm", "delete", "logvm", "--wait"]);
    await ok(["vm", "delete", "sockvm", "--wait"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
