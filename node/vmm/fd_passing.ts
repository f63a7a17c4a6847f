/**
 * One API request to a VMM with file descriptors attached (SCM_RIGHTS), on a connection of its
 * own that is closed after the answer. Cloud Hypervisor takes tap devices it did not open
 * (macvtap queues) only this way on a running VMM: `vm.add-net` and `vm.restore` (`net_fds`)
 * read descriptors that arrive with the request, `vm.create` ignores them.
 *
 * qarax passes macvtap queues this way rather than with `--net fd=` on the VMM's command line:
 * VMMs are started bare and inherit no descriptor from the agent (see `node/proc/detached.ts`:
 * every descriptor is closed before exec, on purpose), a NIC given on the command line could not
 * be added or replaced later, and restoring a snapshot needs SCM_RIGHTS anyway. One mechanism
 * then serves the first start, a restarted VMM, hot-plug and restore alike.
 */
import { FdSocket, SocketTimeoutError } from "../sys/unix_socket.ts";
import { VmmTransportError } from "./errors.ts";
import { encodeRequest, type HttpResponse, parseResponse, ResponseFormatError } from "./http.ts";

/** Sends one request carrying `fds` and reads its answer; the connection is then closed. */
export async function requestWithFds(
  socketPath: string,
  method: string,
  target: string,
  body: Uint8Array | null,
  fds: number[],
  options: { timeoutMs: number },
): Promise<HttpResponse> {
  const deadline = Date.now() + options.timeoutMs;
  let sock: FdSocket;
  try {
    sock = await FdSocket.connect(socketPath, options.timeoutMs);
  } catch (err) {
    throw new VmmTransportError(
      "unreachable",
      socketPath,
      `cannot connect to ${socketPath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    try {
      await sock.send(encodeRequest(method, target, body), fds, options.timeoutMs);
    } catch (err) {
      throw transportError(socketPath, err);
    }
    let pending: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    for (let eof = false;;) {
      let parsed;
      try {
        parsed = parseResponse(pending, eof);
      } catch (err) {
        if (!(err instanceof ResponseFormatError)) throw err;
        throw new VmmTransportError("protocol", socketPath, `malformed answer: ${err.message}`);
      }
      if (parsed && parsed.response.status >= 200) return parsed.response;
      if (parsed) {
        pending = parsed.rest; // an interim 100 Continue
        continue;
      }
      if (eof) {
        throw new VmmTransportError("dropped", socketPath, "connection closed by the VMM");
      }
      let n: number | null;
      try {
        n = await sock.read(chunk, Math.max(0, deadline - Date.now()));
      } catch (err) {
        throw transportError(socketPath, err);
      }
      if (n === null) {
        eof = true;
        continue;
      }
      const merged = new Uint8Array(pending.length + n);
      merged.set(pending);
      merged.set(chunk.subarray(0, n), pending.length);
      pending = merged;
    }
  } finally {
    sock.close();
  }
}

function transportError(socketPath: string, err: unknown): VmmTransportError {
  if (err instanceof VmmTransportError) return err;
  if (err instanceof SocketTimeoutError) {
    return new VmmTransportError("timeout", socketPath, "no answer from the VMM in time", {
      cause: err,
    });
  }
  return new VmmTransportError(
    "dropped",
    socketPath,
    `connection to ${socketPath} lost: ${(err as Error).message}`,
    { cause: err },
  );
}
