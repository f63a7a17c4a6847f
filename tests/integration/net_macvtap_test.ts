/**
 * macvtap NICs through the agent (inside a private network namespace): each NIC gets a
 * macvtap in bridge mode on the network's parent with the NIC's MAC, and the VMM (the
 * emulator) receives its queue as a descriptor over the API socket and checks it is a tap:
 * at creation, on hot-plug, on restore from a snapshot and when a crashed VMM is started
 * again; the device survives an agent restart and goes with the NIC or the VM.
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { IpAdapter } from "../../node/net/ip.ts";
import { macvtapName } from "../../node/net/tap.ts";
import { VmmClient } from "../../node/vmm/client.ts";
import { node } from "../../shared/proto/mod.ts";
import { netnsTest } from "../support/netns.ts";
import { TestAgent } from "../support/node_agent.ts";
import { waitFor } from "../support/process.ts";

const VM = "4e2a9c71-5b3d-4c1e-8f0a-00000000a7a1";
const MAC0 = "52:54:00:a7:00:01";
const MAC1 = "52:54:00:a7:00:02";
const MACVTAP = node.NetworkType.NETWORK_TYPE_MACVTAP;

netnsTest(
  "macvtap NICs: a macvtap per NIC on the parent, its queue handed to the VMM as a tap descriptor",
  async (ns) => {
    const ip = new IpAdapter({ netns: ns.name });
    await ip.exec(["link", "add", "mv0", "type", "veth", "peer", "name", "mv1"]);
    await ip.setLink("mv1", { up: true });
    await using agent = await TestAgent.start({ netns: ns.name });
    await agent.attachPool();
    const kernel = await agent.kernel();
    await agent.vms.attachNetwork({
      bridgeName: "mvnet",
      networkId: "2f8e1d0c-0000-4000-8000-00000000a7a0",
      type: MACVTAP,
      parentInterface: "mv0",
    });
    assert.equal((await ip.link("mv0"))?.up, true, "attaching brings the parent up");

    const created = await agent.vms.createVM({
      vmId: VM,
      payload: { kernel },
      networks: [{ id: "eth0", type: MACVTAP, parentInterface: "mv0", mac: MAC0 }],
    });
    const dev0 = macvtapName(VM, 0);
    assert.equal(created.config.networks[0].tap, dev0);
    const link = await ip.link(dev0);
    assert.deepEqual(
      [link?.kind, link?.parent, link?.macvtapMode, link?.mac, link?.up],
      ["macvtap", "mv0", "bridge", MAC0, true],
    );

    const socket = `${agent.runtimeDir}/${VM}/api.sock`;
    const chLog = `${agent.runtimeDir}/${VM}/ch.log`;
    const received = (nic: string, dev: string) =>
      new RegExp(`Network device ${nic}: 1 tap fd\\(s\\) received over the API socket for ${dev}`);
    /** The VMM holds the NIC as descriptors (shown as -1 each, like CH), never by tap name. */
    const nicsInVmm = async () => {
      using ch = new VmmClient({ socketPath: socket });
      return (await ch.info()).config.net?.map((n) => [n.id, n.mac, n.tap, n.fds]);
    };
    assert.deepEqual(await nicsInVmm(), [["eth0", MAC0, undefined, [-1]]]);
    assert.match(await Deno.readTextFile(chLog), received("eth0", dev0));
    await agent.vms.startVM({ id: VM });
    const running = node.VmStatus.VM_STATUS_RUNNING;
    assert.equal((await agent.vms.getVmInfo({ id: VM })).status, running);

    // Hot-plug and unplug on the running VM.
    await agent.vms.addNetworkDevice({
      vmId: VM,
      config: { id: "eth1", type: MACVTAP, parentInterface: "mv0", mac: MAC1 },
    });
    const dev1 = macvtapName(VM, 1);
    assert.equal((await ip.link(dev1))?.mac, MAC1);
    assert.deepEqual(await nicsInVmm(), [
      ["eth0", MAC0, undefined, [-1]],
      ["eth1", MAC1, undefined, [-1]],
    ]);
    assert.match(await Deno.readTextFile(chLog), received("eth1", dev1));
    await agent.vms.removeNetworkDevice({ vmId: VM, deviceId: "eth1" });
    assert.equal(await ip.link(dev1), undefined);

    // The network cannot go while a VM's macvtap sits on its parent.
    await assert.rejects(
      agent.vms.detachNetwork({ bridgeName: "mvnet" }),
      (e) => e instanceof ClientError && e.code === Status.FAILED_PRECONDITION,
    );

    // Snapshot, stop, restore: the restored VMM gets the queue again (net_fds).
    await agent.vms.snapshotVM({ vmId: VM, snapshotUrl: `file://${agent.poolDir}/snap` });
    await agent.vms.forceStopVM({ id: VM });
    await agent.vms.restoreVM({ vmId: VM, sourceUrl: `file://${agent.poolDir}/snap` });
    assert.equal((await agent.vms.getVmInfo({ id: VM })).status, running);
    assert.deepEqual(await nicsInVmm(), [["eth0", MAC0, undefined, [-1]]]);
    assert.match(await Deno.readTextFile(chLog), received("eth0", dev0));

    // An agent restart keeps the VM's macvtap (it is not an orphan).
    await agent.kill9();
    await agent.launch();
    assert.equal((await agent.vms.getVmInfo({ id: VM })).status, running);
    assert.equal((await ip.link(dev0))?.kind, "macvtap");

    // A crashed VMM is started again with a fresh descriptor for the same macvtap.
    Deno.kill((await agent.vms.getVmInfo({ id: VM })).vmmPid, "SIGKILL");
    await waitFor(
      async () =>
        (await agent.vms.getVmInfo({ id: VM })).status === node.VmStatus.VM_STATUS_CRASHED,
      10_000,
      "the crash to be noticed",
    );
    await agent.vms.startVM({ id: VM });
    assert.equal((await agent.vms.getVmInfo({ id: VM })).status, running);
    assert.deepEqual(await nicsInVmm(), [["eth0", MAC0, undefined, [-1]]]);

    await agent.vms.deleteVM({ id: VM });
    assert.deepEqual((await ip.links()).filter((l) => l.kind === "macvtap"), []);
    await agent.vms.detachNetwork({ bridgeName: "mvnet" });
    assert.ok(await ip.link("mv0"), "the parent is the host's, never removed");
  },
);
