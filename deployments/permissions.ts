/**
 * The Deno permissions of the two programs, defined once: `deno task compile:*` bakes them
 * into the binaries (deployments/compile.ts), the bundle wrappers in deployments/README.md
 * pass them to `deno run`, and tests/integration/bundle_test.ts runs each bundle with exactly
 * these flags, so a missing permission fails a test instead of a production host.
 *
 * Where a permission stays unscoped, its value is configuration (listen addresses, database
 * and node hosts, data and pool directories), which a compiled binary cannot know in advance.
 */

/** One permission flag and the reason the program needs it. */
export interface Permission {
  flag: string;
  why: string;
}

/** A program the node agent starts, and what for. */
export interface Program {
  name: string;
  why: string;
}

/**
 * Everything `qarax-node` starts directly (dax resolves a name on PATH, and Deno allows a
 * listed name at the path it resolves to). VMMs and dnsmasq start through `setsid bash -c`,
 * and `ip netns exec` prefixes commands on test hosts, so those are covered by `setsid`,
 * `bash` and `ip`.
 */
export const NODE_PROGRAMS: readonly Program[] = [
  { name: "ip", why: "bridges, taps, macvtaps, VLANs, addresses, routes (iproute2)" },
  {
    name: "setsid",
    why: "starts each VMM and dnsmasq in its own session (they outlive the agent)",
  },
  { name: "bash", why: "setsid's child: closes inherited descriptors, then execs the program" },
  {
    name: "cloud-hypervisor",
    why: "`--version` for GetNodeInfo (node.cloud_hypervisor_binary, found on PATH)",
  },
  { name: "df", why: "disk size and free space of the runtime directory (GetNodeInfo)" },
  { name: "qemu-img", why: "disk image info and resize" },
  { name: "/bin/cp", why: "sparse, reflinked copies of disk images (called by absolute path)" },
  { name: "mkfs.vfat", why: "cloud-init seed images" },
  { name: "mcopy", why: "writes the cloud-init files into the seed image" },
  { name: "nft", why: "NAT rules of NAT networks" },
  { name: "sysctl", why: "net.ipv4.ip_forward for NAT networks" },
  { name: "cat", why: "reads a macvtap's ifindex inside a test network namespace" },
];

/**
 * Programs the control plane starts: the OpenSSH client for host deployment
 * (`POST /v1/hosts/{id}/deploy`: `bootc switch` over ssh, binaries copied with scp).
 */
export const CONTROL_PROGRAMS: readonly Program[] = [
  { name: "ssh", why: "host deployment runs commands on the host over SSH" },
  { name: "scp", why: "host deployment in binary mode copies the node, config and unit" },
];

/** `qarax` (control plane and CLI). */
export const CONTROL_PERMISSIONS: readonly Permission[] = [
  {
    flag: "--allow-net",
    why: "listens on application.host:port; connects to PostgreSQL (database.url), to every " +
      "registered node's gRPC address and, as the CLI, to the server URL; the embedded " +
      "database's private unix socket lives in the data directory",
  },
  {
    flag: "--allow-env",
    why: "the configuration loader reads the whole environment for QARAX_<SECTION>__<KEY> " +
      "overrides; postgres.js reads PG*, grpc-js GRPC_*, the CLI QARAX_URL/QARAX_TOKEN and " +
      "HOME/XDG_CONFIG_HOME; env:// SSH credential references",
  },
  {
    flag: "--allow-read",
    why: "the operator's --config file, the data directory (embedded database, known_hosts), " +
      "the CLI's login file and --from-file inputs, file:// SSH credential references: all " +
      "paths come from configuration or the command line",
  },
  {
    flag: "--allow-write",
    why: "the data directory (embedded database and its lock, known_hosts) and the CLI's " +
      "login file",
  },
  { flag: "--allow-sys=hostname", why: "the job-lease owner id names the host" },
  {
    flag: `--allow-run=${CONTROL_PROGRAMS.map((p) => p.name).join(",")}`,
    why: "the OpenSSH client for host deployment (CONTROL_PROGRAMS)",
  },
];

/** `qarax-node` (the node agent). */
export const NODE_PERMISSIONS: readonly Permission[] = [
  {
    flag: "--allow-net",
    why: "serves gRPC on node.listen / node.port; talks to each VMM's API socket under the " +
      "runtime directory; downloads disk images from the URLs it is given",
  },
  {
    flag: "--allow-env",
    why: "the configuration loader reads the whole environment (QARAX_NODE__*), and dax " +
      "copies it for every command it runs",
  },
  {
    flag: "--allow-read",
    why: "runtime, state, pool and firmware directories (configuration), /proc (meminfo, " +
      "VMM processes), /sys/class/net, /dev/kvm; dax also needs to read PATH's directories " +
      "to find commands",
  },
  {
    flag: "--allow-write",
    why: "runtime, state and pool directories (configuration), VM disks, taps and macvtap " +
      "devices under /dev",
  },
  {
    flag: "--allow-sys=hostname,loadavg,osRelease",
    why: "GetNodeInfo reports the hostname, load average and kernel release",
  },
  {
    flag: `--allow-run=${NODE_PROGRAMS.map((p) => p.name).join(",")}`,
    why: "the commands of NODE_PROGRAMS, each with its reason",
  },
  {
    flag: "--allow-ffi",
    why: "libc calls Deno lacks (node/sys/libc.ts): SCM_RIGHTS to hand macvtap/tap fds to " +
      "Cloud Hypervisor, OFD locks, ptys, TUNSETIFF. Not scoped: libc is opened by soname " +
      "(its path differs between distributions) and Deno checks a listed name against the " +
      "working directory",
  },
];

/** The programs, by binary name as installed. */
export const PERMISSIONS = {
  qarax: CONTROL_PERMISSIONS,
  "qarax-node": NODE_PERMISSIONS,
} as const;

export type Binary = keyof typeof PERMISSIONS;

/** The command-line flags of `binary`'s permission set. */
export function permissionFlags(binary: Binary): string[] {
  return PERMISSIONS[binary].map((p) => p.flag);
}
