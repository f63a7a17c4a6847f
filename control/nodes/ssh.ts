/**
 * Remote commands on a hypervisor host over OpenSSH (the system `ssh` and `scp`, through the
 * command runner). Host keys are trusted on first use and pinned in one known_hosts file of
 * the control plane (`StrictHostKeyChecking=accept-new`): a key that changes later fails with
 * a FailedPreconditionError saying so. The private key comes from a credential reference,
 * resolved per session; key material from the environment lives in a 0600 temp file only for
 * the session. Never interactive (`BatchMode`), always with a connect timeout.
 */
import { FailedPreconditionError, UnavailableError } from "../../shared/errors/errors.ts";
import { type CommandResult, tryRun } from "../../shared/cmd/run.ts";
import { parseCredentialRef, resolveCredential } from "../domain/credential_ref.ts";

/** Where and as whom to connect. */
export interface SshTarget {
  /** Host name for messages. */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Private key reference (env://NAME or file:///path); null: ssh's own defaults. */
  keyRef: string | null;
}

/** Client settings shared by every session. */
export interface SshSettings {
  knownHostsFile: string;
  connectTimeoutS: number;
}

/** Options of one remote command. */
export interface ExecOptions {
  /** Text fed to the command's stdin (secrets go here, never on the command line). */
  stdin?: string;
  timeoutMs?: number;
  /** The connection may drop while the command runs (reboot): exit 255 is not an error. */
  mayDisconnect?: boolean;
  /** Short description for error messages (default: the command itself). */
  label?: string;
}

/** A shell on a remote host. */
export interface RemoteShell {
  /** Runs a shell command line there; a non-zero exit is a FailedPreconditionError. */
  exec(command: string, options?: ExecOptions): Promise<CommandResult>;
  /** Copies local files into a remote directory (scp). */
  copy(localPaths: string[], remoteDir: string, timeoutMs?: number): Promise<void>;
}

/** The `-o` options of every ssh/scp call. */
export function sshOptions(settings: SshSettings, identityFile: string | null): string[] {
  const opts = [
    "BatchMode=yes",
    "StrictHostKeyChecking=accept-new",
    `UserKnownHostsFile=${settings.knownHostsFile}`,
    "GlobalKnownHostsFile=/dev/null",
    "HashKnownHosts=no",
    "UpdateHostKeys=no",
    `ConnectTimeout=${settings.connectTimeoutS}`,
    "ServerAliveInterval=5",
    "ServerAliveCountMax=3",
    "PasswordAuthentication=no",
    "KbdInteractiveAuthentication=no",
  ];
  if (identityFile) opts.push(`IdentityFile=${identityFile}`, "IdentitiesOnly=yes");
  return ["-F", "/dev/null", ...opts.flatMap((o) => ["-o", o])];
}

/** The error an ssh/scp exit status 255 stands for (connection-level failure). */
export function sshFailure(
  target: SshTarget,
  settings: SshSettings,
  stderr: string,
): FailedPreconditionError | UnavailableError {
  const dest = `${target.user}@${target.address}:${target.port}`;
  const last = stderr.trim().split("\n").filter((l) => !/^Warning: Permanently added/.test(l))
    .slice(-1)[0] ?? "";
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/.test(stderr)) {
    const known = target.port === 22 ? target.address : `[${target.address}]:${target.port}`;
    return new FailedPreconditionError(
      `the SSH host key of host ${target.name} (${target.address}:${target.port}) changed since ` +
        `it was first trusted (pinned in ${settings.knownHostsFile}); if the host was ` +
        `reinstalled, remove the old key with: ssh-keygen -R '${known}' -f ` +
        settings.knownHostsFile,
    );
  }
  if (/Permission denied|Too many authentication failures/.test(stderr)) {
    return new FailedPreconditionError(
      `SSH authentication as ${dest} failed (check ssh_user and ssh_key_ref): ${last}`,
    );
  }
  return new UnavailableError(`cannot reach host ${target.name} over SSH (${dest}): ${last}`);
}

/**
 * Opens a session (resolving the key reference now), runs `fn` with it and removes any temp
 * key file afterwards.
 */
export async function withSsh<T>(
  target: SshTarget,
  settings: SshSettings,
  fn: (sh: RemoteShell) => Promise<T>,
): Promise<T> {
  let identity: string | null = null;
  let temp: string | null = null;
  if (target.keyRef) {
    const ref = parseCredentialRef(target.keyRef, "ssh_key_ref");
    if (ref.kind === "file") {
      await resolveCredential(target.keyRef, "ssh_key_ref"); // readable, or a clear error
      identity = ref.path;
    } else {
      const key = await resolveCredential(target.keyRef, "ssh_key_ref");
      temp = await Deno.makeTempFile({ prefix: "qarax-ssh-key-" });
      await Deno.chmod(temp, 0o600);
      await Deno.writeTextFile(temp, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600 });
      identity = temp;
    }
  }
  await Deno.mkdir(dirOf(settings.knownHostsFile), { recursive: true, mode: 0o700 });
  const opts = sshOptions(settings, identity);
  const remoteHost = target.address.includes(":") ? `[${target.address}]` : target.address;
  const shell: RemoteShell = {
    async exec(command, options = {}) {
      const argv = [
        "ssh",
        ...opts,
        "-p",
        String(target.port),
        "-l",
        target.user,
        "--",
        target.address,
        command,
      ];
      const r = await tryRun(argv, { stdin: options.stdin ?? "", timeoutMs: options.timeoutMs });
      if (r.code === 255) {
        if (options.mayDisconnect) return r;
        throw sshFailure(target, settings, r.stderr);
      }
      if (r.code !== 0) {
        const out = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-5).join(" | ");
        throw new FailedPreconditionError(
          `on host ${target.name}: ${options.label ?? command} failed (exit ${r.code})${
            out ? `: ${out}` : ""
          }`,
        );
      }
      return r;
    },
    async copy(localPaths, remoteDir, timeoutMs) {
      const argv = [
        "scp",
        ...opts,
        "-q",
        "-P",
        String(target.port),
        "--",
        ...localPaths,
        `${target.user}@${remoteHost}:${remoteDir}/`,
      ];
      const r = await tryRun(argv, { timeoutMs });
      if (r.code === 255 && /host key|Permission denied|connect to host/i.test(r.stderr)) {
        throw sshFailure(target, settings, r.stderr);
      }
      if (r.code !== 0) {
        throw new FailedPreconditionError(
          `copying ${localPaths.map((p) => p.split("/").pop()).join(", ")} to host ` +
            `${target.name}:${remoteDir} failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`,
        );
      }
    },
  };
  try {
    return await fn(shell);
  } finally {
    if (temp) await Deno.remove(temp).catch(() => {});
  }
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
