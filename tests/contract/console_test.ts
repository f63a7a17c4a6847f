/**
 * Contract: the serial console on the host side: `Socket` binds at `vm.create` (and refuses an
 * existing path, leaving the config stored), serves a client the boot log and login prompt
 * and echoes input; `File` receives the log; `Pty` gets a real pty path in the config.
 */
import assert from "node:assert/strict";
import { InternalError } from "../../shared/errors/errors.ts";
import { assertVmmError } from "../support/assert_vmm.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, REAL_CH, startVmm } from "../support/emulator.ts";
import { RawConnection } from "../support/raw_http.ts";

const decoder = new TextDecoder();

/** Reads from `conn` until the text matches `re` (or fails after `timeoutMs`). */
async function readUntil(
  conn: Deno.Conn | Deno.FsFile,
  re: RegExp,
  timeoutMs = 5_000,
): Promise<string> {
  let text = "";
  const deadline = performance.now() + timeoutMs;
  const buf = new Uint8Array(4096);
  while (!re.test(text)) {
    if (performance.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(text)}`);
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed; got ${JSON.stringify(text)}`);
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

contractTest(
  "serial Socket: bound at create, boot log and prompt, echo",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    const socket = `${vmm.dir}/serial.sock`;
    await c.create(await bootableConfig(vmm.dir, { serial: { mode: "Socket", socket } }));
    assert.ok((await Deno.stat(socket)).isSocket, "bound at vm.create, before boot");
    const conn = await Deno.connect({ transport: "unix", path: socket });
    try {
      await c.boot();
      const log = await readUntil(conn, REAL_CH ? /\S/ : /login: $/);
      if (!REAL_CH) assert.match(log, /Linux version/);
      await conn.write(new TextEncoder().encode("root\r"));
      const echoed = await readUntil(conn, /root/);
      assert.match(echoed, /root/);
    } finally {
      conn.close();
    }
  },
);

contractTest(
  "serial Socket: an existing path fails vm.create but the config stays",
  {},
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    const socket = `${vmm.dir}/taken.sock`;
    await Deno.writeTextFile(socket, "");
    await assertVmmError(
      c.create({ serial: { mode: "Socket", socket } }),
      InternalError,
      500,
    );
    assert.equal((await c.info()).state, "Created");
  },
);

contractTest("a late client gets the log so far; typing poweroff powers the guest off", {
  boot: true,
  emulatorOnly: true,
}, async () => {
  await using vmm = await startVmm({ noShutdown: true });
  const c = vmm.client();
  const socket = `${vmm.dir}/serial.sock`;
  await c.create(await bootableConfig(vmm.dir, { serial: { mode: "Socket", socket } }));
  await c.boot();
  using conn = await RawConnection.open(socket);
  const log = await readUntil(conn.conn, /login: $/);
  assert.match(log, /Linux version/);
  await conn.write("poweroff\r\n");
  await vmm.waitForEvents((e) => e.some((x) => x.source === "vm" && x.event === "shutdown"));
  assert.equal((await c.info()).state, "Created");
  await assert.rejects(Deno.stat(socket), Deno.errors.NotFound); // released with the VM
});

contractTest("serial File: the guest output lands in the file", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const file = `${vmm.dir}/serial.log`;
  await c.create(await bootableConfig(vmm.dir, { serial: { mode: "File", file } }));
  assert.equal(await Deno.readTextFile(file), ""); // created (truncated) at vm.create
  await c.boot();
  if (!REAL_CH) assert.match(await Deno.readTextFile(file), /Linux version[\s\S]*login: $/);
});

contractTest("serial Pty: a real pty, its path in vm.info, the log readable from it", {
  boot: true,
}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir, { serial: { mode: "Pty" } }));
  const pty = (await c.info()).config.serial?.file;
  assert.ok(pty && /^\/dev\/pts\/\d+$/.test(pty), `pty path ${pty}`);
  if (REAL_CH) return;
  const tty = await Deno.open(pty, { read: true, write: true });
  try {
    await c.boot();
    assert.match(await readUntil(tty, /login: $/), /Linux version/);
  } finally {
    tty.close();
  }
});
