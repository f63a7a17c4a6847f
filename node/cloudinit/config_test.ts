import assert from "node:assert/strict";
import { parse } from "yaml";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  buildMetaData,
  buildNetworkConfig,
  buildSeedFiles,
  hostnameFor,
  seedInputFromVmConfig,
} from "./config.ts";

const VM = "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10";

Deno.test("meta-data: instance id is the VM id, hostname from the VM name", () => {
  assert.deepEqual(parse(buildMetaData(VM, "web-1")), {
    "instance-id": VM,
    "local-hostname": "web-1",
  });
  assert.equal(hostnameFor("My Web_Server!", VM), "my-web-server");
  assert.equal(hostnameFor("", VM), "vm-0f8c3a52");
  assert.equal(hostnameFor("---", VM), "vm-0f8c3a52");
  assert.equal(hostnameFor("x".repeat(80), VM).length, 63);
});

Deno.test("network-config v2: static NICs by MAC with gateway and DNS, DHCP otherwise", () => {
  const text = buildNetworkConfig([
    {
      mac: "52:54:00:AA:BB:01",
      ip: "10.0.0.5/24",
      gateway: "10.0.0.1",
      dns: ["1.1.1.1", "9.9.9.9"],
      mtu: 1450,
    },
    { mac: "52-54-00-aa-bb-02" },
    { ip: "10.0.1.5/24" }, // no MAC: cannot be matched, left to the guest
  ]);
  assert.deepEqual(parse(text!), {
    version: 2,
    ethernets: {
      eth0: {
        match: { macaddress: "52:54:00:aa:bb:01" },
        "set-name": "eth0",
        addresses: ["10.0.0.5/24"],
        routes: [{ to: "0.0.0.0/0", via: "10.0.0.1" }],
        nameservers: { addresses: ["1.1.1.1", "9.9.9.9"] },
        mtu: 1450,
      },
      eth1: { match: { macaddress: "52:54:00:aa:bb:02" }, "set-name": "eth1", dhcp4: true },
    },
  });
  assert.equal(buildNetworkConfig([]), undefined);
  assert.equal(buildNetworkConfig([{ ip: "10.0.0.5/24" }]), undefined);
});

Deno.test("bad NIC addresses are refused naming the NIC's field", () => {
  const field = (nic: Record<string, unknown>) => {
    try {
      buildNetworkConfig([{ mac: "52:54:00:00:00:01" }, { mac: "52:54:00:00:00:02", ...nic }]);
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      return e.details[0].field;
    }
  };
  assert.equal(field({ ip: "10.0.0.0/24" }), "networks.1.guest_ip");
  assert.equal(field({ ip: "10.0.0.5" }), "networks.1.guest_ip");
  assert.equal(field({ ip: "10.0.0.5/24", gateway: "10.9.0.1" }), "networks.1.guest_gateway");
  assert.equal(field({ dns: ["dns.example"] }), "networks.1.guest_dns");
  assert.equal(field({ mac: "zz" }), "networks.1.mac");
});

Deno.test("the VM's own meta-data and network-config win; user-data always present", () => {
  const own = buildSeedFiles({
    vmId: VM,
    name: "a",
    userData: "#cloud-config\npackages: [htop]\n",
    metaData: "instance-id: custom\n",
    networkConfig: "version: 2\n",
    nics: [{ mac: "52:54:00:00:00:01" }],
  });
  assert.equal(own["meta-data"], "instance-id: custom\n");
  assert.equal(own["network-config"], "version: 2\n");
  const plain = buildSeedFiles({ vmId: VM, name: "a", userData: "", nics: [] });
  assert.equal(plain["user-data"], "#cloud-config\n");
  assert.equal(plain["network-config"], undefined);
});

Deno.test("seed input comes from the VM spec, only when it asks for cloud-init", () => {
  assert.equal(seedInputFromVmConfig({ vmId: VM }), undefined);
  assert.equal(seedInputFromVmConfig({ vmId: VM, cloudInit: {} }), undefined);
  const input = seedInputFromVmConfig({
    vmId: VM,
    name: "web",
    cloudInit: { userData: "#cloud-config\n" },
    networks: [{
      id: "net0",
      mac: "52:54:00:00:00:01",
      guestIp: "10.0.0.5/24",
      guestGateway: "10.0.0.1",
      guestDns: ["1.1.1.1"],
    }],
  });
  assert.deepEqual(input, {
    vmId: VM,
    name: "web",
    userData: "#cloud-config\n",
    metaData: undefined,
    networkConfig: undefined,
    nics: [{
      mac: "52:54:00:00:00:01",
      ip: "10.0.0.5/24",
      gateway: "10.0.0.1",
      dns: ["1.1.1.1"],
      mtu: undefined,
    }],
  });
});
