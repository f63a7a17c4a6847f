/**
 * The steps of `host_deploy`: install qarax-node on a host over SSH, then initialise it like
 * `POST /v1/hosts/{id}/init`. `bootc` mode stages the host image (`bootc switch`, or
 * `bootc upgrade` when the host already follows it), reboots into it and waits until the host
 * booted the staged digest; `binary` mode copies the node (binary or bundle), its default
 * config and unit with scp, installs them and restarts the service. Both modes put the control
 * plane's node token into /etc/qarax/node.env (through stdin, never on a command line), wait
 * for the node's gRPC port and run the host init. Every step checks the host before acting, so
 * a retry after a crash or a dropped connection is safe. Remote paths honour
 * `$QARAX_DEPLOY_ROOT` (unset on real hosts) so a test host can keep them in a scratch
 * directory.
 */
import nodeUnit from "../../deployments/systemd/qarax-node.service" with { type: "text" };
import nodeYaml from "../../deployments/host/node.yaml" with { type: "text" };
import {
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  type QaraxError,
} from "../../shared/errors/errors.ts";
import { formatArgv } from "../../shared/cmd/run.ts";
import type { TransactionSql } from "postgres";
import { getHost, type HostRow, type HostStatus } from "../db/hosts.ts";
import type { JobRow } from "../db/jobs.ts";
import type { Emit } from "../events/bus.ts";
import { changeHostStatus } from "../events/status.ts";
import { initHost, isUnreachable, nodeInfo } from "../nodes/hosts.ts";
import { type RemoteShell, type SshSettings, type SshTarget, withSsh } from "../nodes/ssh.ts";
import type { JobContext, Plan, Step } from "./plan.ts";

/** The params `POST /v1/hosts/{id}/deploy` queues (references only, never secrets). */
export interface DeployParams {
  mode: "bootc" | "binary";
  image: string | null;
  ssh_user: string;
  ssh_port: number;
  ssh_key_ref: string | null;
  binary_path: string | null;
  timeout_s: number;
  /** The host's status when the deploy was queued (restored if it is cancelled before it ran). */
  host_status?: HostStatus;
}

/** Opens an SSH session to a target (real ssh in production, a fake in unit tests). */
export type Connect = <T>(
  ctx: JobContext,
  target: SshTarget,
  fn: (sh: RemoteShell) => Promise<T>,
) => Promise<T>;

/** Seconds an SSH connection attempt may take. */
const CONNECT_TIMEOUT_S = 10;
/** Pause between two probes while waiting for a reboot or the node. */
const POLL_MS = 1000;
/** One remote command (image pulls included) may take this long. */
const COMMAND_TIMEOUT_MS = 30 * 60_000;

/** The remote root prefix (`$QARAX_DEPLOY_ROOT`, empty on real hosts). */
const R = `"\${QARAX_DEPLOY_ROOT:-}"`;

/** The known_hosts file under the control plane's data directory. */
export function knownHostsFile(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/known_hosts`;
}

/** The real SSH client with the control plane's known_hosts. */
export const sshConnect: Connect = (ctx, target, fn) => {
  const settings: SshSettings = {
    knownHostsFile: knownHostsFile(ctx.svc.config.application.data_dir),
    connectTimeoutS: CONNECT_TIMEOUT_S,
  };
  return withSsh(target, settings, fn);
};

function params(ctx: JobContext): DeployParams {
  return ctx.job.params as unknown as DeployParams;
}

async function loadHost(ctx: JobContext): Promise<HostRow> {
  const host = await getHost(ctx.svc.sql, ctx.job.resource_id ?? "");
  if (!host) throw NotFoundError.of("host", ctx.job.resource_id ?? "");
  return host;
}

/** Wraps a script that needs root for a non-root SSH user (passwordless sudo). */
export function asRoot(user: string, script: string): string {
  return user === "root" ? script : formatArgv(["sudo", "-n", "sh", "-c", script]);
}

/** The remote staging directory of a job (fixed, so a retry reuses it). */
export function stagingDir(jobId: string): string {
  return `/var/tmp/qarax-deploy-${jobId}`;
}

/** What `bootc status --format=json` says, reduced to what the deploy needs. */
export interface BootcState {
  /** The image the host follows (`spec.image.image`). */
  spec: string | null;
  booted: { image: string | null; digest: string | null } | null;
  staged: { image: string | null; digest: string | null } | null;
}

/** Parses `bootc status --format=json` (BootcHost, org.containers.bootc/v1). */
export function parseBootcStatus(text: string): BootcState {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new FailedPreconditionError(
      `bootc status did not print JSON: ${text.trim().slice(0, 200)}`,
    );
  }
  // deno-lint-ignore no-explicit-any
  const d = doc as any;
  // deno-lint-ignore no-explicit-any
  const entry = (e: any) =>
    e ? { image: e.image?.image?.image ?? null, digest: e.image?.imageDigest ?? null } : null;
  return {
    spec: d?.spec?.image?.image ?? null,
    booted: entry(d?.status?.booted),
    staged: entry(d?.status?.staged),
  };
}

/** True once the host runs what the deploy staged. */
export function bootedTarget(s: BootcState, image: string, digest: string | null): boolean {
  if (!s.booted) return false;
  return digest ? s.booted.digest === digest : s.booted.image === image;
}

/** The script that sets the node token in node.env, keeping the file's other lines. */
export function nodeEnvScript(withToken: boolean): string {
  const f = `${R}/etc/qarax/node.env`;
  if (!withToken) {
    // The unit needs the file; the operator fills it.
    return `set -e; umask 077; mkdir -p ${R}/etc/qarax; [ -e ${f} ] || : > ${f}`;
  }
  return `set -e; umask 077; mkdir -p ${R}/etc/qarax; ` +
    `{ grep -v '^QARAX_NODE__AUTH_TOKEN=' ${f} 2>/dev/null || true; cat; } > ${f}.qarax-new; ` +
    `mv -f ${f}.qarax-new ${f}`;
}

/** The install script of binary mode (from the staging dir into place, atomically). */
export function installScript(staging: string, bundle: boolean): string {
  const s = formatArgv([staging]);
  const put = (src: string, dest: string, mode: string) =>
    `install -D -m ${mode} ${s}/${src} ${R}${dest}.qarax-new && mv -f ${R}${dest}.qarax-new ${R}${dest}`;
  const lines = ["set -e"];
  if (bundle) {
    lines.push(put("qarax-node.js", "/usr/local/lib/qarax/qarax-node.js", "0644"));
    const wrapper = [
      "#!/bin/sh",
      'exec deno run --allow-net --allow-env --allow-read --allow-write --allow-sys --allow-run --allow-ffi /usr/local/lib/qarax/qarax-node.js "$@"',
    ];
    lines.push(
      `mkdir -p ${R}/usr/bin && printf '%s\\n' ${
        wrapper.map((l) => formatArgv([l])).join(" ")
      } > ${R}/usr/bin/qarax-node.qarax-new`,
      `chmod 0755 ${R}/usr/bin/qarax-node.qarax-new && mv -f ${R}/usr/bin/qarax-node.qarax-new ${R}/usr/bin/qarax-node`,
    );
  } else {
    lines.push(put("qarax-node", "/usr/bin/qarax-node", "0755"));
  }
  lines.push(put("qarax-node.service", "/etc/systemd/system/qarax-node.service", "0644"));
  // The operator's configuration is kept; only a missing one is installed.
  lines.push(
    `[ -e ${R}/etc/qarax/node.yaml ] || install -D -m 0644 ${s}/node.yaml ${R}/etc/qarax/node.yaml`,
  );
  lines.push(`rm -rf ${s}`);
  return lines.join("\n");
}

/** Sleeps `ms`, then stops if the job was aborted or cancelled meanwhile. */
async function pause(ctx: JobContext, ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  ctx.waitSignal.throwIfAborted();
}

/** The steps of `host_deploy`, with `connect` opening the SSH sessions. */
export function hostDeploySteps(connect: Connect = sshConnect): Step[] {
  const ssh = async <T>(ctx: JobContext, fn: (sh: RemoteShell) => Promise<T>): Promise<T> => {
    const host = await loadHost(ctx);
    const p = params(ctx);
    return await connect(ctx, {
      name: host.name,
      address: host.address,
      port: p.ssh_port,
      user: p.ssh_user,
      keyRef: p.ssh_key_ref,
    }, fn);
  };
  const root = (ctx: JobContext, script: string) => asRoot(params(ctx).ssh_user, script);
  const bootcStatus = async (ctx: JobContext, sh: RemoteShell) =>
    parseBootcStatus(
      (await sh.exec(root(ctx, "bootc status --format=json"), { timeoutMs: 60_000 })).stdout,
    );
  const onlyIn = (mode: DeployParams["mode"], step: Step): Step => ({
    name: step.name,
    run: (ctx) => params(ctx).mode === mode ? step.run(ctx) : Promise.resolve(),
  });

  /** The host answers over SSH (its key is pinned on first contact). */
  const connectStep: Step = {
    name: "connect",
    async run(ctx) {
      await ssh(ctx, (sh) => sh.exec("uname -m", { timeoutMs: 60_000 }));
    },
  };

  /** bootc: the image is staged (switch to it, or upgrade when already following it). */
  const stageStep = onlyIn("bootc", {
    name: "bootc_stage",
    async run(ctx) {
      const image = params(ctx).image!;
      await ssh(ctx, async (sh) => {
        let s = await bootcStatus(ctx, sh);
        if (
          ctx.data.target_digest !== undefined &&
          bootedTarget(s, image, ctx.data.target_digest as string | null)
        ) return;
        const cmd = s.spec === image ? ["bootc", "upgrade"] : ["bootc", "switch", image];
        await sh.exec(root(ctx, formatArgv(cmd)), { timeoutMs: COMMAND_TIMEOUT_MS });
        s = await bootcStatus(ctx, sh);
        if (s.staged) {
          ctx.data.target_digest = s.staged.digest;
          ctx.data.reboot = true;
        } else if (s.booted?.image === image) {
          // Already running the newest image: nothing to boot into.
          ctx.data.target_digest = s.booted.digest;
          ctx.data.reboot = false;
        } else {
          throw new FailedPreconditionError(
            `host ${(await loadHost(ctx)).name}: ${cmd.join(" ")} staged nothing and the ` +
              `host does not run ${image} (bootc follows ${s.spec ?? "nothing"})`,
          );
        }
        await ctx.save();
      });
    },
  });

  /** binary: the node, its unit and default config are copied into a staging dir. */
  const uploadStep = onlyIn("binary", {
    name: "upload",
    async run(ctx) {
      const p = params(ctx);
      const bundle = p.binary_path!.endsWith(".js");
      try {
        const st = await Deno.stat(p.binary_path!);
        if (!st.isFile) throw new Error("not a regular file");
      } catch (err) {
        throw new FailedPreconditionError(
          `binary_path ${p.binary_path}: not a file on the control plane host (${
            (err as Error).message
          })`,
        );
      }
      const local = await Deno.makeTempDir({ prefix: "qarax-deploy-" });
      try {
        const node = `${local}/${bundle ? "qarax-node.js" : "qarax-node"}`;
        await Deno.copyFile(p.binary_path!, node);
        await Deno.writeTextFile(`${local}/qarax-node.service`, nodeUnit);
        await Deno.writeTextFile(`${local}/node.yaml`, nodeYaml);
        const staging = stagingDir(ctx.job.id);
        await ssh(ctx, async (sh) => {
          await sh.exec(formatArgv(["mkdir", "-p", "-m", "0700", staging]));
          await sh.copy(
            [node, `${local}/qarax-node.service`, `${local}/node.yaml`],
            staging,
            COMMAND_TIMEOUT_MS,
          );
        });
      } finally {
        await Deno.remove(local, { recursive: true }).catch(() => {});
      }
    },
  });

  /** Both: the node token is in /etc/qarax/node.env (sent on stdin). */
  const tokenStep: Step = {
    name: "node_token",
    async run(ctx) {
      const token = ctx.svc.config.nodes.auth_token;
      await ssh(ctx, (sh) =>
        sh.exec(root(ctx, nodeEnvScript(token !== "")), {
          stdin: token ? `QARAX_NODE__AUTH_TOKEN=${token}\n` : "",
          label: "writing /etc/qarax/node.env",
          timeoutMs: 60_000,
        }));
    },
  };

  /** binary: the staged files are installed. */
  const installStep = onlyIn("binary", {
    name: "install",
    async run(ctx) {
      const p = params(ctx);
      const staging = stagingDir(ctx.job.id);
      await ssh(ctx, async (sh) => {
        // A retry after the staging dir was consumed has nothing left to install.
        const probe = await sh.exec(`test -d ${formatArgv([staging])} && echo staged || true`);
        if (!probe.stdout.includes("staged")) {
          if (!ctx.data.installed) {
            throw new FailedPreconditionError(
              `host staging dir ${staging} vanished before install`,
            );
          }
          return;
        }
        await sh.exec(root(ctx, installScript(staging, p.binary_path!.endsWith(".js"))), {
          label: "installing qarax-node",
          timeoutMs: 120_000,
        });
      });
      ctx.data.installed = true;
    },
  });

  /** binary: systemd knows the unit, it is enabled and (re)started. */
  const restartStep = onlyIn("binary", {
    name: "restart",
    async run(ctx) {
      await ssh(ctx, (sh) =>
        sh.exec(
          root(
            ctx,
            "systemctl daemon-reload && systemctl enable qarax-node.service && " +
              "systemctl restart qarax-node.service",
          ),
          { timeoutMs: 120_000 },
        ));
    },
  });

  /** bootc: the host reboots into the staged image (unless it already runs it). */
  const rebootStep = onlyIn("bootc", {
    name: "reboot",
    async run(ctx) {
      if (!ctx.data.reboot) return;
      const image = params(ctx).image!;
      await ssh(ctx, async (sh) => {
        const s = await bootcStatus(ctx, sh);
        if (bootedTarget(s, image, ctx.data.target_digest as string | null)) return;
        // The connection may drop before ssh sees the command's exit.
        await sh.exec(root(ctx, "systemctl reboot"), { mayDisconnect: true, timeoutMs: 60_000 });
      });
    },
  });

  /** bootc: the host answers over SSH again and booted the staged image. */
  const waitBootStep = onlyIn("bootc", {
    name: "wait_boot",
    async run(ctx) {
      const p = params(ctx);
      const deadline = Date.now() + p.timeout_s * 1000;
      let last = "no answer yet";
      for (;;) {
        try {
          const s = await ssh(ctx, (sh) => bootcStatus(ctx, sh));
          if (bootedTarget(s, p.image!, ctx.data.target_digest as string | null)) return;
          last = `booted ${s.booted?.image ?? "?"} ${s.booted?.digest ?? ""}`.trim();
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          last = (err as QaraxError).message;
        }
        if (Date.now() > deadline) {
          throw new DeadlineExceededError(
            `host did not come back running ${p.image} within ${p.timeout_s} s (${last})`,
          );
        }
        await ctx.progress(0.5, "waiting for the host to reboot");
        await pause(ctx, POLL_MS);
      }
    },
  });

  /** Both: the node's gRPC port answers. */
  const waitNodeStep: Step = {
    name: "wait_node",
    async run(ctx) {
      const p = params(ctx);
      const deadline = Date.now() + p.timeout_s * 1000;
      for (;;) {
        const host = await loadHost(ctx);
        try {
          await nodeInfo(ctx.svc, host, Math.min(5000, ctx.svc.config.nodes.call_timeout_ms));
          return;
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          ctx.svc.nodes.reset(host.id);
          if (Date.now() > deadline) {
            throw new DeadlineExceededError(
              `qarax-node on host ${host.name} (${host.address}:${host.port}) did not answer ` +
                `within ${p.timeout_s} s after the deploy: ${err.message}`,
            );
          }
        }
        await ctx.progress(0.5, "waiting for qarax-node");
        await pause(ctx, POLL_MS);
      }
    },
  };

  /** Both: the host init (facts, status up, attachments re-applied). */
  const initStep: Step = {
    name: "init",
    async run(ctx) {
      const r = await initHost(ctx.svc, ctx.job.resource_id!, ctx.cause);
      ctx.data.status = r.host.status;
      ctx.data.node_version = r.host.node_version;
    },
  };

  return [
    connectStep,
    stageStep,
    uploadStep,
    tokenStep,
    installStep,
    restartStep,
    rebootStep,
    waitBootStep,
    waitNodeStep,
    initStep,
  ];
}

/** After a final failure: an installing host is `installation_failed` with the reason. */
export async function undoDeploy(ctx: JobContext, error: Error): Promise<void> {
  await ctx.transaction((tx, emit) =>
    changeHostStatus(
      tx,
      emit,
      ctx.job.resource_id!,
      "installation_failed",
      `deploy failed: ${error.message}`,
      ctx.cause,
      { onlyFrom: ["installing"] },
    )
  );
}

/**
 * A deploy cancelled before it ran: the host goes back to the status it had when the deploy
 * was queued (`host_status` in the params; the route set it `installing`).
 */
export async function releaseDeploy(
  tx: TransactionSql,
  emit: Emit,
  job: JobRow,
  reason: string,
): Promise<void> {
  const before = (job.params as Partial<DeployParams>).host_status;
  await changeHostStatus(
    tx,
    emit,
    job.resource_id!,
    before && before !== "installing" ? before : "unknown",
    `deploy ${reason}`,
    { source: "api" },
    { onlyFrom: ["installing"] },
  );
}

/** The `host_deploy` plan. */
export function hostDeployPlan(connect: Connect = sshConnect): Plan {
  return {
    steps: hostDeploySteps(connect),
    onFailure: undoDeploy,
    release: releaseDeploy,
    result: (ctx) => ({
      mode: params(ctx).mode,
      ...(params(ctx).image ? { image: params(ctx).image } : {}),
      status: ctx.data.status,
      node_version: ctx.data.node_version,
    }),
  };
}
