import assert from "node:assert/strict";
import { CommandFailedError, formatArgv, run, tryRun } from "./run.ts";
import { DeadlineExceededError, UnavailableError } from "../errors/errors.ts";

Deno.test("output is captured and arguments are never split or interpreted", async () => {
  const r = await run(["printf", "%s|", "a b", "$(id)", "c;d"]);
  assert.equal(r.stdout, "a b|$(id)|c;d|");
});

Deno.test("a failing command raises an error naming the command and its stderr", async () => {
  try {
    await run(["sh", "-c", "echo 'RTNETLINK answers: File exists' >&2; exit 2"]);
    assert.fail("expected a failure");
  } catch (e) {
    assert.ok(e instanceof CommandFailedError);
    assert.equal(e.result.code, 2);
    assert.match(e.message, /exit 2\): sh -c .*: RTNETLINK answers: File exists$/);
  }
});

Deno.test("accepted exit codes and tryRun do not throw", async () => {
  assert.equal((await run(["sh", "-c", "exit 3"], { okCodes: [0, 3] })).code, 3);
  assert.equal((await tryRun(["false"])).code, 1);
});

Deno.test("a missing binary is 'unavailable', a slow one times out", async () => {
  await assert.rejects(() => run(["qarax-no-such-binary"]), UnavailableError);
  await assert.rejects(() => run(["sleep", "5"], { timeoutMs: 100 }), DeadlineExceededError);
});

Deno.test("stdin and env reach the command", async () => {
  const r = await run(["sh", "-c", 'cat; printf %s "$QX"'], { stdin: "in-", env: { QX: "env" } });
  assert.equal(r.stdout, "in-env");
});

Deno.test("argv is shown quoted only where needed", () => {
  assert.equal(formatArgv(["ip", "link", "add", "a b", "it's"]), `ip link add 'a b' 'it'\\''s'`);
});
