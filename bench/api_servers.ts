/**
 * Child process of `bench/api_bench.ts`: serves the same database twice — the qarax control plane
 * (`startServer`) and a bare Hono + postgres.js app doing the same single SELECT per request —
 * and prints both URLs as one JSON line.
 */
import { Hono } from "hono";
import { startServer } from "../control/server.ts";
import { connectPostgres } from "../control/db/connect.ts";
import { VM_COLUMNS } from "../control/db/vms.ts";
import { loadControlConfig } from "../shared/config/load.ts";
import { Logger } from "../shared/log/logger.ts";

const url = Deno.args[0];
const pool = Number(Deno.args[1] ?? 10);
const level = (Deno.args[2] ?? "warn") as "warn" | "info";
const { config } = loadControlConfig({ env: {} });
const qarax = await startServer({
  ...config,
  application: { ...config.application, host: "127.0.0.1", port: 0 },
  database: { ...config.database, url, max_connections: pool },
  log: { level, format: "json" },
}, { logger: new Logger({ level, format: "json" }) });

const sql = connectPostgres(url, { max: pool });
const cols = VM_COLUMNS.filter((c) => c !== "version");
const bare = new Hono();
bare.get("/vms/:id", async (c) => {
  const [row] = await sql`select ${sql(cols as unknown as string[])} from vms where id = ${
    c.req.param("id")
  }`;
  return row ? c.json(row) : c.json({ error: "not found" }, 404);
});
bare.get("/vms", async (c) => {
  const limit = Number(c.req.query("limit") ?? 100);
  const items = await sql`select ${sql(cols as unknown as string[])} from vms
                          order by created_at, id limit ${limit + 1}`;
  return c.json({ items: items.slice(0, limit), next_cursor: null });
});
const { promise, resolve } = Promise.withResolvers<Deno.NetAddr>();
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: (a) => resolve(a as Deno.NetAddr),
}, bare.fetch);
const addr = await promise;
console.log(JSON.stringify({ qarax: qarax.url, bare: `http://127.0.0.1:${addr.port}` }));

Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await sql.end();
  await qarax.shutdown();
  Deno.exit(0);
});
