/**
 * `/v1/vms/{id}/console`: the VM's serial console through its node. `GET .../console` is the
 * tail of the serial log (VMs with `console: "log"`, the default); `GET .../console/attach`
 * upgrades to a WebSocket joined to the node's AttachConsole stream (VMs with
 * `console: "socket"`): every client frame (text or binary) is bytes for the guest, guest
 * output comes back as binary frames, a failure as a text frame `Error: ...` before the close.
 * Terminal size is not carried (CH's socket serial has none).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  FailedPreconditionError,
  MalformedRequestError,
  NotFoundError,
  type QaraxError,
} from "../../shared/errors/errors.ts";
import { PushChannel } from "../../shared/async/channel.ts";
import type { node } from "../../shared/proto/mod.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import { type VmRow, vms } from "../db/vms.ts";
import type { NodeClient } from "../nodes/client.ts";
import { errors, IdParams, validationHook } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const tags = ["vms"];

/** The path of the attach route, for the auth middleware's `?token=` exception. */
export const CONSOLE_ATTACH_PATH = /^\/v1\/vms\/[^/]+\/console\/attach$/;

/** The VM, its host and that host's client; 404 for an unknown VM, 409 when not on a node. */
async function vmOnHost(
  deps: AppDeps,
  id: string,
): Promise<{ vm: VmRow; host: HostRow; client: NodeClient }> {
  const vm = await vms.get(deps.sql, id);
  if (!vm) throw NotFoundError.of("vm", id);
  if (!vm.host_id) {
    throw new FailedPreconditionError(`vm ${vm.name} is not created on any host (start it first)`);
  }
  const host = await getHost(deps.sql, vm.host_id);
  if (!host) throw new FailedPreconditionError(`host ${vm.host_id} of vm ${vm.name} is gone`);
  return { vm, host, client: deps.nodes.get(host) };
}

/** A node's NotFound for the VM means it is not created there: a state, not a missing VM. */
function notOnNode(vm: VmRow, host: HostRow, err: unknown): unknown {
  if (err instanceof NotFoundError) {
    return new FailedPreconditionError(`vm ${vm.name} is not created on host ${host.name}`, {
      cause: err,
    });
  }
  return err;
}

const encoder = new TextEncoder();

/** The VM console router. */
export function vmConsoleRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(
    createRoute({
      method: "get",
      path: "/vms/{id}/console",
      tags,
      summary: "Read the VM's serial console log",
      description: "The newest 64 KiB of the serial log the node keeps for a VM with " +
        '`console: "log"` (the default). 409 when the VM is not created on a node, or when ' +
        "its console is a socket (use `/console/attach`).",
      request: { params: IdParams },
      responses: {
        200: {
          description: "The log tail",
          content: { "text/plain": { schema: z.string() } },
        },
        ...errors(404, 409),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { vm, host, client } = await vmOnHost(deps, id);
      const log = await client.call("ReadConsoleLog", (o, n) => n.vm.readConsoleLog({ id }, o))
        .catch((err) => {
          throw notOnNode(vm, host, err);
        });
      if (!log.available) {
        throw new FailedPreconditionError(
          vm.console === "socket"
            ? `vm ${vm.name} has an interactive console and no log: attach with ` +
              `GET /v1/vms/${id}/console/attach (CLI: qarax vm attach ${vm.name})`
            : `vm ${vm.name} has no console log on host ${host.name} yet`,
        );
      }
      return c.text(log.content, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/vms/{id}/console/attach",
      tags,
      summary: "Attach to the VM's serial console (WebSocket)",
      description: 'For a VM created with `console: "socket"`. Upgrade to a WebSocket; each ' +
        "frame the client sends (text or binary) is written to the serial port, guest output " +
        "comes back as binary frames. A failure after the upgrade arrives as a text frame " +
        "`Error: <message>` followed by the close. Terminal resize is not supported. " +
        "Browsers cannot set an Authorization header on a WebSocket, so this route (only) " +
        "also accepts the bearer token as `?token=`. 400 without an upgrade request, 409 " +
        "when the VM is not created on a node or has no socket console.",
      request: {
        params: IdParams,
        query: z.object({
          token: z.string().optional().openapi({
            description: "Bearer token, for clients that cannot send the header",
          }),
        }),
      },
      responses: {
        101: { description: "Switching to the WebSocket protocol" },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { vm, host, client } = await vmOnHost(deps, id);
      if (vm.console !== "socket") {
        throw new FailedPreconditionError(
          `vm ${vm.name} has no interactive console (console is "${vm.console}"); read its log ` +
            `with GET /v1/vms/${id}/console, or set console to "socket" while it is shut down ` +
            `(CLI: qarax vm update ${vm.name} --console socket) and start it again`,
        );
      }
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new MalformedRequestError("this route expects a WebSocket upgrade request");
      }
      const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
      socket.binaryType = "arraybuffer";
      const log = c.get("log").child({ vm_id: id, host: host.name });
      const inputs = new PushChannel<node.ConsoleInput.$Properties>();
      const stop = new AbortController();
      const onShutdown = () => stop.abort();
      deps.shutdown.addEventListener("abort", onShutdown);
      inputs.push({ vmId: id });
      socket.onmessage = (e) => {
        const data = typeof e.data === "string"
          ? encoder.encode(e.data)
          : new Uint8Array(e.data as ArrayBuffer);
        inputs.push({ data });
      };
      socket.onclose = () => {
        inputs.end();
        stop.abort();
      };
      const close = (code: number, reason = "") => {
        if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
      };
      socket.onopen = async () => {
        log.info("console attached");
        try {
          const outputs = client.stream(
            "AttachConsole",
            (o, n) => n.vm.attachConsole(inputs, o),
            { signal: stop.signal },
          );
          for await (const out of outputs) {
            if (out.error) {
              if (socket.readyState === WebSocket.OPEN) socket.send(`Error: ${out.errorMessage}`);
              return close(1011, "console error");
            }
            if (socket.readyState !== WebSocket.OPEN) break;
            socket.send(out.data);
          }
          close(1000, "console closed");
        } catch (err) {
          if (stop.signal.aborted) return;
          const e = notOnNode(vm, host, err) as QaraxError;
          log.warn("console attach failed", { error: e.message });
          if (socket.readyState === WebSocket.OPEN) socket.send(`Error: ${e.message}`);
          close(1011, "console error");
        } finally {
          inputs.end();
          deps.shutdown.removeEventListener("abort", onShutdown);
          log.info("console detached");
        }
      };
      return response;
    },
  );

  return app;
}
