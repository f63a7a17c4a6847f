/**
 * Makes this machine ready for `deno task test`: installs the Debian packages the tests use
 * when they are missing (as root, with apt-get), and makes sure PostgreSQL answers at
 * TEST_DATABASE_URL, starting an installed but stopped cluster (or installing one) if needed.
 * Idempotent and quiet when everything is already there.
 */
import { connectPostgres } from "../control/db/connect.ts";

/** Debian package -> a check that tells whether what the tests need from it is present. */
const PACKAGES: Record<string, () => Promise<boolean>> = {
  "iproute2": () => has("ip"),
  "curl": () => has("curl"),
  "qemu-utils": () => has("qemu-img"),
  "dosfstools": () => has("mkfs.vfat"),
  "mtools": () => has("mcopy"),
  "python3-grpcio": () => ok(["/usr/bin/python3", "-c", "import grpc"]),
  "python3-protobuf": () => ok(["/usr/bin/python3", "-c", "import google.protobuf"]),
  "protobuf-compiler": () => has("protoc"),
  // protoc's well-known types (google/protobuf/empty.proto) for the interop test.
  "libprotobuf-dev": () => exists("/usr/include/google/protobuf/empty.proto"),
  "dnsmasq-base": () => has("dnsmasq"),
  "busybox": () => has("busybox"),
  "nftables": () => has("nft"),
  "openssh-server": () => exists("/usr/sbin/sshd"),
  "openssh-client": () => has("ssh"),
};

const TEST_DATABASE_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

function say(msg: string) {
  console.error(`prepare: ${msg}`);
}

async function ok(argv: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function has(cmd: string): Promise<boolean> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const d of dirs) if (d && await exists(`${d}/${cmd}`)) return true;
  return false;
}

async function sh(argv: string[], env: Record<string, string> = {}): Promise<boolean> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { DEBIAN_FRONTEND: "noninteractive", ...env },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return out.success;
}

async function aptInstall(packages: string[]): Promise<void> {
  if (packages.length === 0) return;
  if (Deno.uid() !== 0 || !await has("apt-get")) {
    say(`missing packages (install them to run every test): ${packages.join(" ")}`);
    return;
  }
  say(`installing ${packages.join(" ")}`);
  const args = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages];
  if (!await sh(args)) {
    await sh(["apt-get", "update", "-qq"]);
    if (!await sh(args)) say(`apt-get could not install ${packages.join(" ")}`);
  }
}

async function pgAnswers(): Promise<boolean> {
  const sql = connectPostgres(TEST_DATABASE_URL, { max: 1, connectTimeoutS: 3 });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

async function waitForPg(seconds: number): Promise<boolean> {
  for (let i = 0; i < seconds * 2; i++) {
    if (await pgAnswers()) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/** The installed Debian clusters that serve the test database's port (others are not ours). */
async function clusters(): Promise<{ version: string; name: string; status: string }[]> {
  if (!await has("pg_lsclusters")) return [];
  const out = await new Deno.Command("pg_lsclusters", { args: ["-h"], stdout: "piped" }).output();
  const port = new URL(TEST_DATABASE_URL).port || "5432";
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean).map((l) => {
    const [version, name, clusterPort, status] = l.split(/\s+/);
    return { version, name, port: clusterPort, status };
  }).filter((c) => c.port === port);
}

async function ensurePostgres(): Promise<void> {
  if (await pgAnswers()) return;
  let found = await clusters();
  if (found.length === 0 && Deno.uid() === 0 && await has("apt-get")) {
    await aptInstall(["postgresql"]);
    found = await clusters();
    // A freshly installed Debian cluster only trusts peers on its socket; let the tests in
    // over loopback the way CI's server does (this cluster was created just now, by us).
    for (const c of found) {
      const hba = `/etc/postgresql/${c.version}/${c.name}/pg_hba.conf`;
      const text = await Deno.readTextFile(hba).catch(() => "");
      if (text && !text.includes("qarax-tests")) {
        await Deno.writeTextFile(
          hba,
          `# qarax-tests: loopback trust for the test suite\nhost all postgres 127.0.0.1/32 trust\n` +
            text,
        );
      }
    }
  }
  for (const c of found.filter((c) => c.status !== "online")) {
    say(`starting PostgreSQL cluster ${c.version}/${c.name}`);
    await sh(["pg_ctlcluster", "--skip-systemctl-redirect", c.version, c.name, "start"]);
  }
  for (const c of found.filter((c) => c.status === "online")) {
    // Online but not answering us (e.g. config just changed): reload it.
    await sh(["pg_ctlcluster", "--skip-systemctl-redirect", c.version, c.name, "reload"]);
  }
  if (!await waitForPg(30)) {
    say(
      `PostgreSQL does not answer at ${new URL(TEST_DATABASE_URL).host}; database tests will fail`,
    );
  }
}

if (import.meta.main) {
  const missing: string[] = [];
  for (const [pkg, check] of Object.entries(PACKAGES)) if (!await check()) missing.push(pkg);
  await aptInstall(missing);
  await ensurePostgres();
}
