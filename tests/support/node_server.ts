/**
 * A bare node gRPC server (`startNodeServer`: token, local pools, no VM managers) in its own
 * process, for tests of the RPC layer; disposing it kills the process (no GOAWAY on the wire).
 */
import { spawn, type Spawned, waitFor } from "./process.ts";

const MAIN = new URL("./node_server_main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** A running node server process and its address (`host:port`). */
export interface NodeServerProcess extends AsyncDisposable {
  address: string;
  proc: Spawned;
}

/** Starts the server with `token` and the given pools (each a directory) under `dir`. */
export async function startNodeServerProcess(
  options: { dir: string; token?: string; pools?: { id: string; path: string }[] },
): Promise<NodeServerProcess> {
  const proc = spawn(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    "--config",
    CONFIG,
    MAIN,
    JSON.stringify({ dir: options.dir, token: options.token ?? "", pools: options.pools ?? [] }),
  ]);
  try {
    const address = await waitFor(
      () => Promise.resolve(/READY (\S+)/.exec(proc.output())?.[1]),
      30_000,
      "the node server",
    );
    return {
      address,
      proc,
      async [Symbol.asyncDispose]() {
        await proc.stop(0);
      },
    };
  } catch (err) {
    await proc.stop(0);
    throw new Error(`${(err as Error).message}\n${proc.output()}`);
  }
}
