/**
 * One emulated `cloud-hypervisor` process from start to exit: logging and the event monitor
 * first (`vmm/starting`), then the API socket (lock file, stale socket removal, bind), the
 * control loop, signal handling, the optional create+boot/restore from command-line flags,
 * and CH's exit path (API socket removed, lock file kept). Fatal errors are printed in CH's
 * "exited with the following chain of errors" form with exit status 1.
 */
import type { RestoreConfig, VmConfig } from "../vmm/types.ts";
import { ApiFailure, ioErrorText } from "./api_error.ts";
import {
  apiSocketTarget,
  type CliArgs,
  EMULATOR_CRATE_VERSION,
  EMULATOR_FEATURES,
  EMULATOR_RELEASE,
  eventMonitorTarget,
  hasPayload,
  vmConfigFromCli,
} from "./cli.ts";
import { EventMonitor } from "./event_monitor.ts";
import { type Faults, readFaults } from "./faults.ts";
import { MicroHttpServer } from "./http_server.ts";
import { tryLock } from "./locks.ts";
import { ChLog } from "./log.ts";
import { parseOptions, toggle } from "./option_parser.ts";
import { createRouter } from "./router.ts";
import * as schema from "./schema.ts";
import { normalize } from "./serde.ts";
import { Vmm } from "./vmm.ts";
import { FdListener } from "../sys/unix_socket.ts";

const encoder = new TextEncoder();

/** CH's fatal-error report (cli_print_error_chain) and exit status 1. */
export function fatal(chain: string[]): never {
  let text = "Error: Cloud Hypervisor exited with the following ";
  if (chain.length === 1) text += `error:\n  ${chain[0]}\n`;
  else text += `chain of errors:\n${chain.map((m, i) => `  ${i}: ${m}`).join("\n")}\n`;
  Deno.stderr.writeSync(encoder.encode(text));
  Deno.exit(1);
}

/** Runs the emulated VMM until it exits. */
export async function runEmulator(
  args: CliArgs,
  env: Record<string, string | undefined>,
): Promise<void> {
  const start = performance.now();
  let log: ChLog;
  try {
    log = new ChLog(args.verbosity, args.single["log-file"] ?? null);
  } catch (err) {
    fatal(["Error creating log file", ioErrorText(err)]);
  }
  let faults: Faults;
  try {
    faults = readFaults(env);
  } catch (err) {
    fatal([(err as Error).message]);
  }
  let events: EventMonitor;
  try {
    const spec = args.single["event-monitor"];
    events = new EventMonitor(spec === undefined ? null : eventMonitorTarget(spec), start);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
      fatal(["Error doing event monitor I/O", ioErrorText(err)]);
    }
    fatal([(err as Error).message]);
  }
  log.info("cloud-hypervisor", `${EMULATOR_RELEASE} starting`);
  events.emit("vmm", "starting");

  let server: MicroHttpServer | null = null;
  let socketPath: string | null = null;
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    server?.close();
    if (socketPath) {
      try {
        Deno.removeSync(socketPath);
      } catch { /* already gone */ }
    }
    events.close();
    log.close();
    Deno.exit(code);
  };

  const vmm = new Vmm({
    events,
    log,
    faults,
    noShutdown: args.flags.has("no-shutdown"),
    identity: {
      buildVersion: EMULATOR_RELEASE,
      version: EMULATOR_CRATE_VERSION,
      features: EMULATOR_FEATURES,
    },
    exit,
  });

  const apiSocket = args.single["api-socket"];
  if (apiSocket !== undefined) {
    const target = apiSocketTarget(apiSocket);
    if ("fd" in target) {
      fatal([
        "Failed to start the VMM thread",
        "--api-socket fd=<n> is not supported by the qarax CH emulator (use path=)",
      ]);
    }
    if (faults.startDelayMs) await new Promise((r) => setTimeout(r, faults.startDelayMs));
    const lock = tryLock(`${target.path}.lock`, { create: true });
    if (lock === "busy") {
      fatal([
        "Failed to start the VMM thread",
        `API socket "${target.path}" is already in use by another running instance`,
      ]);
    }
    // Holding the lock, any socket file left at the path is stale from a crashed run.
    try {
      Deno.removeSync(target.path);
    } catch { /* usually absent */ }
    // Through libc rather than Deno.listen: requests may carry tap descriptors (SCM_RIGHTS).
    let listener: FdListener;
    try {
      listener = FdListener.listen(target.path);
    } catch (err) {
      fatal([
        "Failed to start the VMM thread",
        "Error creating API server socket",
        ioErrorText(err),
      ]);
    }
    socketPath = target.path;
    server = new MicroHttpServer(
      listener,
      createRouter(vmm, {
        crashOn: faults.crashOn,
        crash: () => Deno.kill(Deno.pid, "SIGKILL"),
        exit,
        log: (msg) => log.info("http-server", msg),
      }),
      { log: (msg) => log.warn("http-server", msg) },
    );
    server.serve();
  }

  const onSignal = (signal: Deno.Signal, fn: () => void | Promise<void>) => {
    Deno.addSignalListener(signal, () => {
      log.info("vmm", `Received ${signal}`);
      vmm.exclusive(fn).catch((err) => log.error("vmm", String(err)));
    });
  };
  onSignal("SIGUSR1", () => vmm.guestPoweroff());
  onSignal("SIGUSR2", () => vmm.guestReboot());
  onSignal("SIGPWR", () => vmm.guestPanic());
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    onSignal(sig, () => {
      vmm.vmmShutdown();
      exit(0);
    });
  }

  if (hasPayload(args)) await startFromFlags(vmm, args, exit);
  else if (args.single.restore !== undefined) {
    await restoreFromFlags(vmm, args.single.restore, exit);
  }
}

async function startFromFlags(
  vmm: Vmm,
  args: CliArgs,
  exit: (code: number) => void,
): Promise<void> {
  let config: VmConfig;
  try {
    config = normalize(vmConfigFromCli(args), schema.VmConfig) as VmConfig;
  } catch (err) {
    fatal(["Error parsing config", (err as Error).message]);
  }
  await vmm.exclusive(async () => {
    try {
      vmm.create(config);
    } catch (err) {
      failStart(vmm, "Error creating VM", err, exit);
    }
    try {
      await vmm.boot();
    } catch (err) {
      failStart(vmm, "Error booting VM", err, exit);
    }
  });
}

async function restoreFromFlags(
  vmm: Vmm,
  spec: string,
  exit: (code: number) => void,
): Promise<void> {
  const o = parseOptions(spec);
  const source = o.get("source_url");
  if (!source) fatal(["Error parsing restore", "Error parsing --restore: source_url missing"]);
  const restore: RestoreConfig = { source_url: source };
  try {
    if (o.has("resume")) restore.resume = toggle(o.get("resume")!);
    if (o.has("prefault")) restore.prefault = toggle(o.get("prefault")!);
  } catch (err) {
    fatal(["Error parsing restore", (err as Error).message]);
  }
  await vmm.exclusive(async () => {
    try {
      await vmm.restore(restore);
    } catch (err) {
      failStart(vmm, "Error restoring VM", err, exit);
    }
  });
}

function failStart(vmm: Vmm, top: string, err: unknown, exit: (code: number) => void): never {
  const chain = err instanceof ApiFailure ? err.chain.slice(1) : [String(err)];
  vmm.vmmShutdown();
  let text = "Error: Cloud Hypervisor exited with the following chain of errors:\n";
  text += [top, ...chain].map((m, i) => `  ${i}: ${m}`).join("\n") + "\n";
  Deno.stderr.writeSync(encoder.encode(text));
  exit(1);
  throw err; // unreachable: exit() ends the process
}
