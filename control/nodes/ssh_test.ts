/** The SSH client's options and how it reads ssh's failures. */
import assert from "node:assert/strict";
import { FailedPreconditionError, UnavailableError } from "../../shared/errors/errors.ts";
import { sshFailure, sshOptions } from "./ssh.ts";

const target = { name: "hv1", address: "10.0.0.5", port: 2222, user: "root", keyRef: null };
const settings = { knownHostsFile: "/var/lib/qarax/known_hosts", connectTimeoutS: 10 };

Deno.test("sshOptions: batch mode, TOFU into our known_hosts, timeout, only the given key", () => {
  const opts = sshOptions(settings, "/tmp/k").join(" ");
  for (
    const o of [
      "-F /dev/null",
      "-o BatchMode=yes",
      "-o StrictHostKeyChecking=accept-new",
      "-o UserKnownHostsFile=/var/lib/qarax/known_hosts",
      "-o ConnectTimeout=10",
      "-o IdentityFile=/tmp/k",
      "-o IdentitiesOnly=yes",
    ]
  ) assert.ok(opts.includes(o), o);
  assert.ok(!sshOptions(settings, null).join(" ").includes("IdentityFile"));
});

Deno.test("sshFailure: changed key and auth failures are final, the rest retryable", () => {
  const changed = sshFailure(
    target,
    settings,
    "@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n...\nHost key verification failed.\n",
  );
  assert.ok(changed instanceof FailedPreconditionError);
  assert.match(changed.message, /SSH host key of host hv1 \(10\.0\.0\.5:2222\) changed/);
  assert.match(
    changed.message,
    /ssh-keygen -R '\[10\.0\.0\.5\]:2222' -f \/var\/lib\/qarax\/known_hosts/,
  );
  const denied = sshFailure(target, settings, "root@10.0.0.5: Permission denied (publickey).\n");
  assert.ok(denied instanceof FailedPreconditionError);
  assert.match(denied.message, /SSH authentication as root@10\.0\.0\.5:2222 failed/);
  const refused = sshFailure(
    target,
    settings,
    "ssh: connect to host 10.0.0.5 port 2222: Connection refused\n",
  );
  assert.ok(refused instanceof UnavailableError);
  assert.match(refused.message, /cannot reach host hv1 over SSH .*Connection refused/);
});
