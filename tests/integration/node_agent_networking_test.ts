/**
 * VM networking through the agent, with the agent itself running inside a private network
 * namespace (`ip netns exec`): the bridge, one tap per NIC on it with the right master and MTU
 * (hot-plugged NICs too), taps removed with their NIC or VM, orphan taps reconciled after a
 * restart, and the cloud-init network-config built from the NIC.
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { run } from "../../shared/cmd/run.ts";
import { IpAdapter } from "../../node/net/ip.ts";
import { tapAlias, tapName } from "../../node/net/tap.ts";
import { VmmClient } from "../../node/vmm/client.ts";
import { node } from "../../shared/proto/mod.ts";
import { netnsTest } from "../support/netns.ts";
import { TestAgent, vmmPidsUnder } from "../support/node_agent.ts";

const VM = "3b7c9d10-aaaa-4bbb-8ccc-000000000001";
const GONE = "9e8d7c60-aaaa-4bbb-8ccc-000000000002";

netnsTest(
  "bridge and taps (boot and hotplug) really exist with master and MTU; removed with the VM",
  async (ns) => {
    const ip = new IpAdapter({ netns: ns.name });
    await using agent = await TestAgent.start({ netns: ns.name });
    await agent.attachPool();
    const kernel = await agent.kernel();
    await agent.vms.attachNetwork({
      bridgeName: "qxbr0",
      networkId: "5d0c1e2f-0000-4000-8000-00000000aaaa",
      subnet: "10.99.0.0/24",
      gateway: "10.99.0.1",
      mtu: 1450,
    });
    const bridge = await ip.link("qxbr0");
    assert.equal(bridge?.kind, "bridge");
    assert.equal(bridge?.mtu, 1450);

    const created = await agent.vms.createVM({
      vmId: VM,
      payload: { kernel },
      networks: [{
        id: "eth0",
        bridge: "qxbr0",
        guestIp: "10.99.0.10/24",
        guestGateway: "10.99.0.1",
        guestDns: ["10.99.0.1"],
      }],
      cloudInit: { userData: "#cloud-config\n" },
    });
    const tap0 = tapName(VM, 0);
    const nic = created.config.networks[0];
    assert.equal(nic.tap, tap0, "the answer names the node's tap");
    assert.match(nic.mac ?? "", /^52:/);
    let link = await ip.link(tap0);
    assert.equal(link?.kind, "tun");
    assert.equal(link?.master, "qxbr0");
    assert.equal(link?.mtu, 1450, "the bridge's MTU by default");

    // The guest learns its address for the MAC the node gave the NIC.
    const seed = await run(
      ["mcopy", "-n", "-i", `${agent.runtimeDir}/${VM}/cidata.img`, "::network-config", "-"],
      { env: { MTOOLS_SKIP_CHECK: "1" } },
    );
    assert.match(seed.stdout, new RegExp(`macaddress: ${nic.mac}`));
    assert.match(seed.stdout, /10\.99\.0\.10\/24/);

    await agent.vms.startVM({ id: VM });
    link = await ip.link(tap0);
    assert.ok(link?.up);

    // A hot-plugged NIC gets its own tap on its bridge, with its MTU (upstream left it unbridged).
    await agent.vms.addNetworkDevice({
      vmId: VM,
      config: { id: "eth1", bridge: "qxbr0", mtu: 1400 },
    });
    const tap1 = tapName(VM, 1);
    link = await ip.link(tap1);
    assert.equal(link?.master, "qxbr0");
    assert.equal(link?.mtu, 1400);
    using ch = new VmmClient({ socketPath: `${agent.runtimeDir}/${VM}/api.sock` });
    assert.deepEqual((await ch.info()).config.net?.map((n) => [n.id, n.tap]), [
      ["eth0", tap0],
      ["eth1", tap1],
    ]);
    await assert.rejects(
      agent.vms.detachNetwork({ bridgeName: "qxbr0" }),
      (e) => e instanceof ClientError && e.code === Status.FAILED_PRECONDITION,
    );
    await agent.vms.removeNetworkDevice({ vmId: VM, deviceId: "eth1" });
    assert.equal(await ip.link(tap1), undefined, "the NIC's tap went with it");
    assert.deepEqual((await ch.info()).config.net?.map((n) => n.id), ["eth0"]);

    // A tap left by a VM that no longer exists is removed when the agent restarts; the VM's own
    // tap stays and the VM is adopted.
    const orphan = tapName(GONE, 0);
    await ip.addTap(orphan, { multiQueue: false });
    await ip.setLink(orphan, { alias: tapAlias(GONE, 0), master: "qxbr0" });
    await agent.kill9();
    await agent.launch();
    assert.equal(await ip.link(orphan), undefined);
    assert.equal((await ip.link(tap0))?.master, "qxbr0");
    assert.equal((await agent.vms.getVmInfo({ id: VM })).status, node.VmStatus.VM_STATUS_RUNNING);

    await agent.vms.deleteVM({ id: VM });
    assert.equal(await ip.link(tap0), undefined);
    assert.deepEqual((await ip.links()).filter((l) => l.name.startsWith("qt")), []);
    assert.deepEqual(vmmPidsUnder(agent.dir), []);
    await agent.vms.detachNetwork({ bridgeName: "qxbr0" });
    assert.equal(await ip.link("qxbr0"), undefined);
  },
);
