/**
 * A real OpenSSH server as a stand-in hypervisor host for deployment tests. It runs inside a
 * private network namespace, reached from the test's namespace through a veth pair
 * (10.x.y.1 here, 10.x.y.2 there), with a scratch directory holding its config, host key, the
 * authorised client key (a fresh ed25519 pair) and stand-in `bootc` and `systemctl` scripts
 * that come first on the session's PATH (sshd `SetEnv`) and record their calls. The session
 * also gets `QARAX_DEPLOY_ROOT=<scratch>/root`, so whatever a deploy installs lands there and
 * not on this machine. Everything (namespace, veth, processes, files) goes on dispose.
 */
import { run } from "../../shared/cmd/run.ts";
import { createNetns, type Netns } from "./netns.ts";
import { spawn, type Spawned, waitFor } from "./process.ts";

/** The image a fresh stand-in host runs. */
export const BASE_IMAGE = "quay.io/centos-bootc/centos-bootc:stream10";

const SSH_PORT = 2222;

/** The stand-in host. */
export interface TestSshHost {
  ns: Netns;
  /** The host's address (inside the namespace) and sshd's port. */
  address: string;
  port: number;
  dir: string;
  /** Where deployed files land (`$QARAX_DEPLOY_ROOT`). */
  root: string;
  /** Private key authorised for root, and its file. */
  clientKey: string;
  clientKeyFile: string;
  /** Calls of the stand-in commands so far, one line each (`bootc switch …`). */
  calls(): Promise<string[]>;
  /** A new host key (as after a reinstall); sshd is restarted with it. */
  regenerateHostKey(): Promise<void>;
  output(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

const BOOTC = `#!/bin/sh
# Stand-in bootc: keeps its state in files, records its calls.
S="$QARAX_TEST_SSH_DIR/bootc"
echo "bootc $*" >> "$QARAX_TEST_SSH_DIR/calls.log"
get() { cat "$S/$1" 2>/dev/null || true; }
next_digest() { n=$(($(get counter || echo 0) + 1)); echo "$n" > "$S/counter"; echo "sha256:$(printf '%064d' "$n")"; }
entry() { if [ -z "$1" ]; then printf null; else printf '{"image":{"image":{"image":"%s","transport":"registry"},"imageDigest":"%s"}}' "$1" "$2"; fi; }
case "$1" in
  status)
    spec=$(get spec)
    if [ -n "$spec" ]; then spec_json=$(printf '{"image":"%s","transport":"registry"}' "$spec"); else spec_json=null; fi
    printf '{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":%s},"status":{"staged":%s,"booted":%s}}\\n' \\
      "$spec_json" "$(entry "$(get staged_image)" "$(get staged_digest)")" "$(entry "$(get booted_image)" "$(get booted_digest)")"
    ;;
  switch)
    echo "$2" > "$S/spec"; echo "$2" > "$S/staged_image"; next_digest > "$S/staged_digest"
    echo "Queued for next boot: $2"
    ;;
  upgrade)
    spec=$(get spec); [ -n "$spec" ] || { echo "no image to upgrade" >&2; exit 1; }
    echo "$spec" > "$S/staged_image"; next_digest > "$S/staged_digest"
    ;;
  *) echo "stand-in bootc: unknown command $1" >&2; exit 2 ;;
esac
`;

const SYSTEMCTL = `#!/bin/sh
# Stand-in systemctl: records its calls; reboot boots the staged bootc image.
echo "systemctl $*" >> "$QARAX_TEST_SSH_DIR/calls.log"
S="$QARAX_TEST_SSH_DIR/bootc"
if [ "$1" = reboot ] && [ -s "$S/staged_image" ]; then
  mv -f "$S/staged_image" "$S/booted_image"; mv -f "$S/staged_digest" "$S/booted_digest"
fi
exit 0
`;

async function keygen(file: string, comment: string): Promise<void> {
  await Deno.remove(file).catch(() => {});
  await Deno.remove(`${file}.pub`).catch(() => {});
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

/** Starts the stand-in host; dispose it with `await using`. */
export async function startTestSshHost(): Promise<TestSshHost> {
  const ns = await createNetns();
  const tag = crypto.randomUUID().slice(0, 8);
  const outside = `qxd${tag}`;
  const r = 100 + Math.floor(Math.random() * 150);
  const s = Math.floor(Math.random() * 250);
  const address = `10.${r}.${s}.2`;
  const dir = await Deno.makeTempDir({ prefix: "qarax-sshd-" });
  let sshd: Spawned | undefined;
  const cleanup = async () => {
    await sshd?.stop();
    await run(["ip", "link", "del", outside], { okCodes: [0, 1] }).catch(() => {});
    await ns.remove().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await Deno.chmod(dir, 0o755);
    await run([
      "ip",
      "link",
      "add",
      outside,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      ns.name,
    ]);
    await run(["ip", "addr", "add", `10.${r}.${s}.1/30`, "dev", outside]);
    await run(["ip", "link", "set", outside, "up"]);
    await ns.exec(["ip", "addr", "add", `${address}/30`, "dev", "eth0"]);
    await ns.exec(["ip", "link", "set", "eth0", "up"]);

    // Privilege separation needs this root-owned directory (the package normally makes it).
    await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    const root = `${dir}/root`;
    await Deno.mkdir(`${dir}/bin`);
    await Deno.mkdir(`${dir}/bootc`);
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${dir}/bin/bootc`, BOOTC, { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/bin/systemctl`, SYSTEMCTL, { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/bootc/spec`, `${BASE_IMAGE}\n`);
    await Deno.writeTextFile(`${dir}/bootc/booted_image`, `${BASE_IMAGE}\n`);
    await Deno.writeTextFile(`${dir}/bootc/booted_digest`, `sha256:${"f".repeat(64)}\n`);
    await Deno.writeTextFile(`${dir}/calls.log`, "");
    await keygen(`${dir}/host_ed25519`, "qarax-test-host");
    const clientKeyFile = `${dir}/client_ed25519`;
    await keygen(clientKeyFile, "qarax-test-client");
    await Deno.copyFile(`${clientKeyFile}.pub`, `${dir}/authorized_keys`);
    const path = `${dir}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
    await Deno.writeTextFile(
      `${dir}/sshd_config`,
      [
        `Port ${SSH_PORT}`,
        `ListenAddress ${address}`,
        `HostKey ${dir}/host_ed25519`,
        `PidFile ${dir}/sshd.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        // The scratch dir lives under /tmp (world-writable): skip the ownership walk.
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        `SetEnv PATH=${path} QARAX_DEPLOY_ROOT=${root} QARAX_TEST_SSH_DIR=${dir}`,
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const start = async () => {
      sshd = spawn("ip", [
        "netns",
        "exec",
        ns.name,
        "/usr/sbin/sshd",
        "-D",
        "-e",
        "-f",
        `${dir}/sshd_config`,
      ]);
      const proc = sshd;
      await waitFor(
        async () => {
          if (/Server listening/.test(proc.output())) return true;
          const st = await Promise.race([proc.child.status, Promise.resolve(null)]);
          if (st) throw new Error(`sshd exited: ${proc.output()}`);
          return false;
        },
        10_000,
        `sshd in ${ns.name}`,
      );
    };
    await start();
    return {
      ns,
      address,
      port: SSH_PORT,
      dir,
      root,
      clientKey: await Deno.readTextFile(clientKeyFile),
      clientKeyFile,
      async calls() {
        return (await Deno.readTextFile(`${dir}/calls.log`)).split("\n").filter(Boolean);
      },
      async regenerateHostKey() {
        await sshd?.stop();
        await keygen(`${dir}/host_ed25519`, "qarax-test-host-reinstalled");
        await start();
      },
      output: () => sshd?.output() ?? "",
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
