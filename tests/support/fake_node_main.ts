/**
 * Entry point of a fake node process (see fake_node.ts): serves the fake's gRPC services and a
 * small HTTP control API for the test that started it, then prints `READY <grpc> <control>`.
 */
import { errorFromCode, isErrorCode } from "../../shared/errors/errors.ts";
import { FakeNode, type FakeNodeOptions, fakeState } from "./fake_node.ts";

const options = JSON.parse(Deno.args[0] ?? "{}") as FakeNodeOptions;
const fake = await new FakeNode(options).start();

const control = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  const path = new URL(req.url).pathname;
  const body = await req.json().catch(() => ({}));
  const ok = (v: unknown = null) => Response.json(v);
  switch (path) {
    case "/fail":
      if (!isErrorCode(body.code)) return new Response("bad code", { status: 400 });
      fake.fail(body.method, errorFromCode(body.code, body.message), body.times ?? 1);
      return ok();
    case "/delay":
      fake.delay(body.method, body.ms);
      return ok();
    case "/poweroff":
      fake.poweroff(body.vm_id);
      return ok();
    case "/crash":
      fake.crash(body.vm_id, body.reason);
      return ok();
    case "/set":
      fake.setSilently(body.vm_id, body.status, body.reason);
      return ok();
    case "/forget":
      fake.forget(body.vm_id);
      return ok();
    case "/forget-network":
      fake.forgetNetwork(body.bridge);
      return ok();
    case "/state":
      return ok(fakeState(fake));
    case "/stop":
      await fake.stop();
      return ok();
    case "/restart":
      if (!fake.running) await fake.restart();
      return ok();
    default:
      return new Response("not found", { status: 404 });
  }
});

console.log(`READY ${fake.port} ${control.addr.port}`);
