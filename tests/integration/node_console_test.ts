/**
 * The serial console through a real node agent driving emulator VMMs: ReadConsoleLog returns
 * the boot log of a File-serial VM, and AttachConsole on a Socket-serial VM gets the login
 * prompt and the echo of what it sends.
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { PushChannel } from "../../shared/async/channel.ts";
import { node } from "../../shared/proto/mod.ts";
import { waitFor } from "../support/process.ts";
import { TestAgent } from "../support/node_agent.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function vmId(n: number): string {
  return `c0501e00-0000-4000-8000-${String(n).padStart(12, "0")}`;
}

Deno.test("ReadConsoleLog returns the boot log of a VM with the default (File) serial", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const id = vmId(1);
  await agent.vms.createVM({
    vmId: id,
    name: "log-1",
    payload: { kernel, cmdline: "console=ttyS0" },
  });
  await agent.vms.startVM({ id });
  let log = { content: "", available: false };
  await waitFor(
    async () => {
      log = await agent.vms.readConsoleLog({ id });
      return log.content.includes("login:");
    },
    10_000,
    "the boot log",
  );
  assert.equal(log.available, true);
  assert.match(log.content, /Linux version/);
  assert.match(log.content, /Command line: console=ttyS0/);

  // No attach without a socket serial.
  const inputs = new PushChannel<node.ConsoleInput.$Properties>();
  inputs.push({ vmId: id });
  await assert.rejects(
    async () => {
      for await (const _ of agent.vms.attachConsole(inputs)) { /* none */ }
    },
    (err) => {
      assert.ok(err instanceof ClientError, String(err));
      assert.equal(err.code, Status.FAILED_PRECONDITION);
      assert.match(err.details, /socket serial/);
      return true;
    },
  );
  await agent.vms.deleteVM({ id });
  await assert.rejects(agent.vms.readConsoleLog({ id }), /NOT_FOUND|not found/i);
});

Deno.test("AttachConsole on a Socket-serial VM gets the login prompt and the echo", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const id = vmId(2);
  await agent.vms.createVM({
    vmId: id,
    name: "sock-1",
    payload: { kernel, cmdline: "console=ttyS0" },
    serial: { mode: node.ConsoleMode.CONSOLE_MODE_SOCKET },
  });
  await agent.vms.startVM({ id });
  const none = await agent.vms.readConsoleLog({ id });
  assert.equal(none.available, false);
  assert.equal(none.content, "");

  const inputs = new PushChannel<node.ConsoleInput.$Properties>();
  inputs.push({ vmId: id });
  let seen = "";
  let sent = false;
  for await (const out of agent.vms.attachConsole(inputs)) {
    assert.equal(out.error, false, out.errorMessage);
    seen += decoder.decode(out.data);
    if (!sent && seen.includes("login: ")) {
      sent = true;
      inputs.push({ resize: true, rows: 40, cols: 120 }); // ignored
      inputs.push({ data: encoder.encode("root\r") });
    }
    if (sent && seen.includes("login: root\r\n")) break;
  }
  assert.match(seen, /Linux version/);
  assert.match(seen, /qarax-emulated login: root\r\n/);
  inputs.end();
  await agent.vms.deleteVM({ id });
});
