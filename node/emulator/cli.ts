/**
 * The `cloud-hypervisor` command line, parsed the way CH's clap definition does: long options
 * with `--opt value` or `--opt=value`, repeatable list options (`--disk a b --disk c`),
 * counted `-v`, `-V/--version`, `-h/--help`, and clap's error text and exit status 2 for
 * unknown or incomplete arguments. Also turns the VM-config flags into a VmConfig, for
 * `cloud-hypervisor --kernel ...` style starts (create + boot at once).
 */
import type { ConsoleConfig, DiskConfig, NetConfig, VmConfig } from "../vmm/types.ts";
import { byteSized, integer, OptionError, parseOptions, toggle } from "./option_parser.ts";

/** Options that take exactly one value. */
const SINGLE = [
  "api-socket",
  "balloon",
  "cmdline",
  "console",
  "cpus",
  "debug-console",
  "event-monitor",
  "firmware",
  "initramfs",
  "kernel",
  "log-file",
  "memory",
  "platform",
  "restore",
  "rng",
  "seccomp",
  "serial",
  "tpm",
  "vsock",
  "igvm",
  "host-data",
  "gdb",
] as const;

/** Options that take one or more values and may repeat. */
const MULTI = [
  "device",
  "disk",
  "fs",
  "generic-vhost-user",
  "landlock-rules",
  "memory-zone",
  "net",
  "numa",
  "pci-segment",
  "pmem",
  "rate-limit-group",
  "user-device",
  "vdpa",
] as const;

/** Flags without value. */
const FLAGS = ["no-shutdown", "landlock", "pvpanic", "watchdog", "version", "help"] as const;

export interface CliArgs {
  single: Partial<Record<typeof SINGLE[number], string>>;
  multi: Partial<Record<typeof MULTI[number], string[]>>;
  flags: Set<typeof FLAGS[number]>;
  verbosity: number;
}

/** What to do: run, or print and exit with a code. */
export type CliOutcome =
  | { kind: "run"; args: CliArgs }
  | { kind: "exit"; code: number; stdout?: string; stderr?: string };

/** Version printed by `-V` and reported by `vmm.ping`. */
export const EMULATOR_RELEASE = "v53.0-emulated";
export const EMULATOR_CRATE_VERSION = "53.0.0";
export const EMULATOR_FEATURES = ["kvm", "io_uring", "qarax-emulator"];

const USAGE = "Usage: cloud-hypervisor [OPTIONS]";
const MORE = "For more information, try '--help'.";

function clapError(message: string, tip?: string): CliOutcome {
  const tipText = tip ? `\n\n  tip: ${tip}` : "";
  return { kind: "exit", code: 2, stderr: `error: ${message}${tipText}\n\n${USAGE}\n\n${MORE}\n` };
}

/** Parses argv (without the program name). */
export function parseCli(argv: string[]): CliOutcome {
  if (argv.length === 0) return { kind: "exit", code: 2, stderr: helpText() };
  const args: CliArgs = { single: {}, multi: {}, flags: new Set(), verbosity: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-v+$/.test(a)) {
      args.verbosity += a.length - 1;
      continue;
    }
    if (a === "-V") {
      args.flags.add("version");
      continue;
    }
    if (a === "-h") {
      args.flags.add("help");
      continue;
    }
    if (!a.startsWith("--") || a === "--") {
      return clapError(`unexpected argument '${a}' found`);
    }
    const eq = a.indexOf("=");
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    if ((FLAGS as readonly string[]).includes(name)) {
      if (inline !== undefined) {
        return clapError(
          `unexpected value '${inline}' for '--${name}' found; no more were expected`,
        );
      }
      args.flags.add(name as typeof FLAGS[number]);
      continue;
    }
    const isSingle = (SINGLE as readonly string[]).includes(name);
    const isMulti = (MULTI as readonly string[]).includes(name);
    if (!isSingle && !isMulti) {
      return clapError(
        `unexpected argument '${a}' found`,
        `to pass '${a}' as a value, use '-- ${a}'`,
      );
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else {
      while (i + 1 < argv.length && !(argv[i + 1].startsWith("-") && argv[i + 1] !== "-")) {
        values.push(argv[++i]);
        if (isSingle) break;
      }
    }
    if (values.length === 0) {
      return clapError(`a value is required for '--${name} <${name}>' but none was supplied`);
    }
    if (isSingle) {
      if (args.single[name as typeof SINGLE[number]] !== undefined) {
        return clapError(`the argument '--${name} <${name}>' cannot be used multiple times`);
      }
      if (name === "seccomp" && !["true", "false", "log"].includes(values[0])) {
        return clapError(
          `invalid value '${
            values[0]
          }' for '--seccomp <seccomp>'\n  [possible values: true, false, log]`,
        );
      }
      args.single[name as typeof SINGLE[number]] = values[0];
    } else {
      (args.multi[name as typeof MULTI[number]] ??= []).push(...values);
    }
  }
  if (args.flags.has("help")) return { kind: "exit", code: 0, stdout: helpText() };
  if (args.flags.has("version")) {
    let out = `cloud-hypervisor ${EMULATOR_RELEASE}\n`;
    if (args.verbosity > 0) {
      out += `Enabled features: [${EMULATOR_FEATURES.map((f) => JSON.stringify(f)).join(", ")}]\n`;
    }
    return { kind: "exit", code: 0, stdout: out };
  }
  return { kind: "run", args };
}

/** `--api-socket`: `path=<p>`, `fd=<n>` or a bare path. */
export function apiSocketTarget(value: string): { path: string } | { fd: number } {
  const o = parseOptions(value);
  if (o.has("fd")) return { fd: integer(o.get("fd")!) };
  if (o.has("path")) return { path: o.get("path")! };
  return { path: value };
}

/** `--event-monitor`: `path=<p>` or `fd=<n>` (a bare value is an error, as in CH). */
export function eventMonitorTarget(value: string): { path: string } | { fd: number } {
  const o = parseOptions(value);
  if (o.has("fd")) return { fd: integer(o.get("fd")!) };
  if (o.has("path")) return { path: o.get("path")! };
  throw new OptionError("Error parsing --event-monitor: path or fd required");
}

/** True when the flags name a payload, so CH creates and boots a VM at start. */
export function hasPayload(args: CliArgs): boolean {
  return args.single.kernel !== undefined || args.single.firmware !== undefined ||
    args.single.igvm !== undefined;
}

/** Builds the VmConfig the VM-config flags describe (before serde defaults). */
export function vmConfigFromCli(args: CliArgs): VmConfig {
  const s = args.single;
  const cfg: VmConfig = {
    payload: {
      ...(s.kernel ? { kernel: s.kernel } : {}),
      ...(s.firmware ? { firmware: s.firmware } : {}),
      ...(s.cmdline ? { cmdline: s.cmdline } : {}),
      ...(s.initramfs ? { initramfs: s.initramfs } : {}),
    },
  };
  const cpus = parseOptions(s.cpus ?? "boot=1");
  const boot = integer(cpus.get("boot") ?? "1");
  cfg.cpus = { boot_vcpus: boot, max_vcpus: integer(cpus.get("max") ?? String(boot)) };
  const mem = parseOptions(s.memory ?? "size=512M");
  cfg.memory = { size: byteSized(mem.get("size") ?? "512M") };
  if (mem.has("shared")) cfg.memory.shared = toggle(mem.get("shared")!);
  if (mem.has("hugepages")) cfg.memory.hugepages = toggle(mem.get("hugepages")!);
  if (mem.has("hotplug_size")) cfg.memory.hotplug_size = byteSized(mem.get("hotplug_size")!);
  if (mem.has("hotplug_method")) {
    cfg.memory.hotplug_method = mem.get("hotplug_method") === "virtio-mem" ? "VirtioMem" : "Acpi";
  }
  if (s.rng) cfg.rng = { src: parseOptions(s.rng).get("src") ?? "/dev/urandom" };
  cfg.serial = consoleFromCli(s.serial ?? "null");
  cfg.console = consoleFromCli(s.console ?? "tty");
  if (args.multi.disk) cfg.disks = args.multi.disk.map(diskFromCli);
  if (args.multi.net) cfg.net = args.multi.net.map(netFromCli);
  if (s.balloon) cfg.balloon = { size: byteSized(parseOptions(s.balloon).get("size") ?? "0") };
  if (args.flags.has("pvpanic")) cfg.pvpanic = true;
  if (args.flags.has("watchdog")) cfg.watchdog = true;
  return cfg;
}

function consoleFromCli(v: string): ConsoleConfig {
  const o = parseOptions(v);
  if (o.has("file")) return { mode: "File", file: o.get("file")! };
  if (o.has("socket")) return { mode: "Socket", socket: o.get("socket")! };
  const mode = ({ off: "Off", null: "Null", pty: "Pty", tty: "Tty" } as const)[
    (o.get("") ?? "").toLowerCase() as "off"
  ];
  if (!mode) throw new OptionError(`Error parsing console: invalid console mode given: ${v}`);
  return { mode };
}

function diskFromCli(v: string): DiskConfig {
  const o = parseOptions(v);
  const d: DiskConfig = {};
  if (o.has("path")) d.path = o.get("path");
  if (o.has("id")) d.id = o.get("id");
  if (o.has("readonly")) d.readonly = toggle(o.get("readonly")!);
  if (o.has("direct")) d.direct = toggle(o.get("direct")!);
  if (o.has("num_queues")) d.num_queues = integer(o.get("num_queues")!);
  if (o.has("serial")) d.serial = o.get("serial");
  if (o.has("image_type")) {
    const t = o.get("image_type")!.toLowerCase();
    d.image_type = ({ raw: "Raw", qcow2: "Qcow2", vhdx: "Vhdx", vhd: "FixedVhd" } as const)[
      t as "raw"
    ] ?? "Unknown";
  }
  return d;
}

function netFromCli(v: string): NetConfig {
  const o = parseOptions(v);
  const n: NetConfig = {};
  for (const k of ["tap", "ip", "mask", "mac", "host_mac", "id"] as const) {
    if (o.has(k)) n[k] = o.get(k);
  }
  if (o.has("mtu")) n.mtu = integer(o.get("mtu")!);
  if (o.has("num_queues")) n.num_queues = integer(o.get("num_queues")!);
  if (o.has("queue_size")) n.queue_size = integer(o.get("queue_size")!);
  return n;
}

/** The (abridged) `--help` text, in clap's layout. */
export function helpText(): string {
  const opts: [string, string][] = [
    [
      "--api-socket <api-socket>",
      "HTTP API socket (UNIX domain socket): path=</path/to/a/file> or fd=<fd>.",
    ],
    [
      "--event-monitor <event-monitor>",
      "File to report events on: path=</path/to/a/file> or fd=<fd>",
    ],
    ["--log-file <log-file>", "Log file. Standard error is used if not specified"],
    ["--no-shutdown", "Do not exit the VMM when the guest shuts down"],
    ["--seccomp <seccomp>", "[default: true] [possible values: true, false, log]"],
    ["--landlock", "enable/disable Landlock."],
    ["--kernel <kernel>", "Path to kernel to load"],
    ["--firmware <firmware>", "Path to firmware that is loaded in an architectural specific way"],
    ["--cmdline <cmdline>", "Kernel command line"],
    ["--initramfs <initramfs>", "Path to initramfs image"],
    ["--cpus <cpus>", "boot=<boot_vcpus>,max=<max_vcpus> [default: boot=1,max_phys_bits=46]"],
    ["--memory <memory>", 'Memory parameters "size=<guest_memory_size>,..." [default: size=512M]'],
    ["--disk <disk>...", "path=<disk_image_path>,readonly=on|off,id=<device_id>,..."],
    [
      "--net <net>...",
      "tap=<if_name>,ip=<ip_addr>,mask=<net_mask>,mac=<mac_addr>,id=<device_id>,...",
    ],
    ["--rng <rng>", "Random number generator parameters [default: src=/dev/urandom]"],
    [
      "--serial <serial>",
      "Control serial port: off|null|pty|tty|file=</path/to/a/file>|socket=</path/to/a/file> [default: null]",
    ],
    [
      "--console <console>",
      'Control (virtio) console: "off|null|pty|tty|file=</path/to/a/file>" [default: tty]',
    ],
    ["--restore <restore>", "Restore from a VM snapshot: source_url=<source_url>,resume=on|off"],
    ["-v...", "Sets the level of debugging output"],
    ["-h, --help", "Print help"],
    ["-V, --version", "Print version"],
  ];
  const width = Math.max(...opts.map(([o]) => o.length)) + 2;
  const lines = opts.map(([o, h]) => `      ${o.padEnd(width)}${h}`);
  return `Launch a cloud-hypervisor VMM (qarax emulator, ${EMULATOR_RELEASE}).\n\n${USAGE}\n\nOptions:\n${
    lines.join("\n")
  }\n`;
}
