/**
 * The node's network manager on a private namespace, for networking tests: state and DHCP
 * files in a temp dir (searchable by `nobody`, as dnsmasq needs), `restart()` for a second
 * manager on the same state (what an agent restart sees), and cleanup of both on dispose.
 */
import { IpAdapter } from "../../node/net/ip.ts";
import { NetworkManager } from "../../node/net/manager.ts";
import { networkSpecFromRequest } from "../../node/net/spec.ts";
import { StateStore } from "../../node/state/store.ts";
import type { node } from "../../shared/proto/mod.ts";
import type { Netns } from "./netns.ts";
import { pidsWhere } from "./process.ts";

export interface ManagedNetns extends AsyncDisposable {
  ip: IpAdapter;
  manager: NetworkManager;
  dhcpDir: string;
  /** A new manager on the same state and namespace (the old one stops supervising). */
  restart(): Promise<NetworkManager>;
  /** AttachNetwork through the request validation. */
  attach(req: node.AttachNetworkRequest.$Properties): ReturnType<NetworkManager["attach"]>;
}

/** A network manager working in `ns`. */
export async function managerIn(ns: Netns): Promise<ManagedNetns> {
  const dir = await Deno.makeTempDir({ prefix: "qarax-net-" });
  await Deno.chmod(dir, 0o755);
  const ip = new IpAdapter({ netns: ns.name });
  const open = async () =>
    new NetworkManager(ip, await StateStore.open(`${dir}/state`), { dhcpDir: `${dir}/dhcp` });
  const managed: ManagedNetns = {
    ip,
    manager: await open(),
    dhcpDir: `${dir}/dhcp`,
    async restart() {
      managed.manager.close();
      managed.manager = await open();
      return managed.manager;
    },
    attach(req) {
      return managed.manager.attach(networkSpecFromRequest(req));
    },
    async [Symbol.asyncDispose]() {
      // Whatever a test left attached is torn down (dnsmasq processes included).
      for (const a of await managed.manager.list().catch(() => [])) {
        await managed.manager.detach({ bridge: a.bridge, networkId: "" }).catch(() => {});
      }
      managed.manager.close();
      for (const pid of dnsmasqPids(dir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return managed;
}

/** Pids of live dnsmasq processes whose configuration lies under `dir`. */
export function dnsmasqPids(dir: string): number[] {
  return pidsWhere((argv) => argv.some((a) => a.startsWith(`--conf-file=${dir}/`)));
}
