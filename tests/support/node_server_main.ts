/**
 * Entry point of a bare node gRPC server process for tests (see node_server.ts): the real
 * `startNodeServer` with the given token and local pools, without VM or network managers.
 * Prints `READY <address>` once listening. Tests run it apart from themselves because Deno
 * 2.9's HTTP/2 can crash a process that holds both ends of a closing session
 * (denoland/deno#36788).
 */
import { parseListen } from "../../shared/net/listen.ts";
import { startNodeServer } from "../../node/rpc/server.ts";
import { StateStore } from "../../node/state/store.ts";
import { PoolManager } from "../../node/storage/pools.ts";

const options = JSON.parse(Deno.args[0]) as {
  dir: string;
  token: string;
  pools: { id: string; path: string }[];
};
const pools = new PoolManager(await StateStore.open(`${options.dir}/state`));
for (const p of options.pools) await pools.attach({ id: p.id, kind: "local", path: p.path });
const srv = await startNodeServer({
  listen: parseListen("127.0.0.1:0"),
  authToken: options.token,
  runtimeDir: options.dir,
  vmmBinary: "/nonexistent",
  pools,
});
console.log(`READY ${srv.address}`);
