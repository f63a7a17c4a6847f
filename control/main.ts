/**
 * `qarax`: the control-plane binary. Server commands: `serve` (the REST API) and `migrate`
 * (apply database migrations and exit); everything else is the client CLI (`control/cli/`).
 */
import { flagHelp, type FlagSpec, parseFlags } from "../shared/config/flags.ts";
import { ConfigError, loadControlConfig } from "../shared/config/load.ts";
import { redactValue } from "../shared/config/redact.ts";
import { Logger, logger, setLogger } from "../shared/log/logger.ts";
import { QaraxError } from "../shared/errors/errors.ts";
import { startServer } from "./server.ts";
import { openDatabase } from "./db/open.ts";
import { migrate } from "./db/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";
import { runCli } from "./cli/mod.ts";

const SERVE_FLAGS: FlagSpec[] = [
  { name: "config", short: "c", help: "configuration file layered over the defaults" },
  { name: "host", path: "application.host", help: "listen address" },
  { name: "port", short: "p", path: "application.port", help: "listen port" },
  { name: "database-url", path: "database.url", help: "PostgreSQL URL (empty: embedded)" },
  { name: "log-level", path: "log.level", help: "debug | info | warn | error" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const USAGE = `Usage: qarax serve|migrate [flags]

  serve     run the control plane (REST API)
  migrate   apply database migrations and exit

Flags:
${flagHelp(SERVE_FLAGS)}

Client commands: \`qarax --help\`.
`;

function loadConfig(argv: string[]) {
  const flags = parseFlags(argv, SERVE_FLAGS);
  if (flags.other.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const loaded = loadControlConfig({
    flags: flags.config,
    configFile: flags.other.config as string | undefined,
  });
  setLogger(new Logger({ level: loaded.config.log.level, format: loaded.config.log.format }));
  logger().debug("configuration", {
    environment: loaded.environment,
    config: redactValue(loaded.config),
  });
  return loaded.config;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "migrate": {
      const config = loadConfig(rest);
      const db = await openDatabase(config, logger());
      try {
        const result = await migrate(db.sql, MIGRATIONS);
        console.log(
          `applied ${result.applied.length} migration(s)` +
            (result.applied.length ? `: ${result.applied.join(", ")}` : ""),
        );
      } finally {
        await db.close();
      }
      return 0;
    }
    case "serve": {
      const config = loadConfig(rest);
      const server = await startServer(config);
      console.log(`qarax API:  ${server.url}/v1\nqarax docs: ${server.url}/docs`);
      const stop = () => {
        logger().info("shutting down");
        server.shutdown({ exiting: true }).then(() => Deno.exit(0));
      };
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      await new Promise(() => {});
      return 0;
    }
    default:
      return await runCli(args);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof QaraxError) {
      console.error(`qarax: ${err.message}`);
      Deno.exit(err instanceof ConfigError ? 78 : 1);
    }
    throw err;
  }
}
