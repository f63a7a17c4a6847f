/**
 * Commands about the CLI's own session and the event stream: `login` (checks the token and
 * saves it), `logout`, `events` (follows `GET /v1/events`), `version`.
 */
import { InvalidArgumentError } from "../../../shared/errors/errors.ts";
import { commit, VERSION, versionLine } from "../../../shared/version.ts";
import { ApiClient } from "../client.ts";
import { type CliFile, readCliFile, writeCliFile } from "../config.ts";
import type { CommandSpec } from "../framework.ts";
import { parseInteger } from "../fields.ts";
import { Names, resolveId } from "../resolve.ts";
import { followEvents, type SseEvent } from "../sse.ts";

/** `qarax login`. */
export const loginCommand: CommandSpec = {
  name: "login",
  summary: "Check a server URL and token and save them for later commands",
  options: {
    "token-stdin": { type: "boolean", help: "read the token from stdin" },
    verify: {
      type: "boolean",
      negatable: true,
      help: "check the token against the server first (default; --no-verify skips it)",
    },
  },
  notes: `The URL comes from --url, QARAX_URL or the saved one; the token from --token,
--token-stdin, QARAX_TOKEN or a prompt. Both are saved in the CLI config file (mode 0600),
the token under its URL: it is never sent to another server.`,
  async run(ctx, input) {
    const settings = await ctx.settings();
    let token = settings.tokenSource === "file" ? undefined : settings.token;
    if (input.opts["token-stdin"]) token = (await ctx.io.readStdin()).trim();
    if (token === undefined && ctx.io.stdinIsTty && ctx.io.readSecret) {
      token = (await ctx.io.readSecret(`Token for ${settings.url} (empty: none): `))?.trim();
    }
    if (token === "") token = undefined;
    if (input.opts.verify !== false) {
      // Any authenticated read proves the token; a server without auth accepts anything.
      await new ApiClient(settings.url, token).get("/v1/hosts", { limit: 1 });
    }
    const path = ctx.configPath();
    const file: CliFile = (await readCliFile(path, (m) => ctx.io.err(`warning: ${m}\n`))) ??
      { tokens: {} };
    file.url = settings.url;
    if (token !== undefined) file.tokens[settings.url] = token;
    else delete file.tokens[settings.url];
    await writeCliFile(path, file);
    ctx.print(
      { url: settings.url, token_saved: token !== undefined, config: path },
      () =>
        `Logged in to ${settings.url}${
          token === undefined ? " (no token)" : ""
        }; saved to ${path}\n`,
    );
  },
};

/** `qarax logout`. */
export const logoutCommand: CommandSpec = {
  name: "logout",
  summary: "Forget the saved token of the server",
  async run(ctx) {
    const settings = await ctx.settings();
    const path = ctx.configPath();
    const file = await readCliFile(path);
    if (!file?.tokens[settings.url]) {
      ctx.io.err(`No token saved for ${settings.url}.\n`);
      return;
    }
    delete file.tokens[settings.url];
    await writeCliFile(path, file);
    ctx.print(
      { url: settings.url, config: path },
      () => `Removed the token of ${settings.url} from ${path}\n`,
    );
  },
};

/** What an event says, in a few words: a status change, a job's state, else its JSON. */
export function eventSummary(data: unknown): string {
  if (!data || typeof data !== "object" || Array.isArray(data)) return JSON.stringify(data);
  const d = data as Record<string, unknown>;
  if (typeof d.job_type === "string") {
    const msg = typeof d.progress_message === "string" ? ` ${d.progress_message}` : "";
    const err = d.error && typeof d.error === "object"
      ? ` error: ${(d.error as { message?: unknown }).message}`
      : "";
    return `${d.job_type} ${d.status} ${d.progress ?? 0}%${msg}${err}`;
  }
  if (typeof d.status === "string" && "previous_status" in d) {
    const reason = typeof d.reason === "string" ? ` (${d.reason})` : "";
    return `${d.previous_status ?? "-"} → ${d.status}${reason}`;
  }
  return JSON.stringify(d);
}

/** One event as a text line: time, type, resource (by name when known), summary. */
export function eventLine(ev: SseEvent, names?: Names): string {
  let parsed: Record<string, unknown> | undefined;
  try {
    const v = JSON.parse(ev.data);
    if (v && typeof v === "object" && !Array.isArray(v)) parsed = v;
  } catch { /* not JSON: print as sent */ }
  if (!parsed) return [ev.id ?? "-", ev.event, ev.data].join("  ") + "\n";
  const data = "data" in parsed ? parsed.data : parsed;
  // A job event is about the job's own resource: show that (`vm/web-1`), not the job id.
  const d = (data && typeof data === "object" ? data : {}) as Record<string, unknown>;
  const jobTarget = typeof d.job_type === "string" && typeof d.resource_type === "string";
  const type = String((jobTarget ? d.resource_type : parsed.resource_type) ?? "");
  const id = String((jobTarget ? d.resource_id : parsed.resource_id) ?? "");
  const name = names && (type === "vm" || type === "host") ? names.of(type, id) : id;
  return [
    typeof parsed.time === "string" ? parsed.time : ev.id ?? "-",
    typeof parsed.type === "string" ? parsed.type : ev.event,
    type ? `${type}/${name || "-"}` : "-",
    eventSummary(data),
  ].join("  ") + "\n";
}

/** `qarax events`. */
export const eventsCommand: CommandSpec = {
  name: "events",
  summary: "Follow the event stream (reconnects, resuming after the last event seen)",
  options: {
    type: {
      type: "string",
      multiple: true,
      value: "TYPE",
      help: "an event type (vm.status_changed) or a family (vm, host, job)",
    },
    vm: { type: "string", multiple: true, value: "VM", help: "only events about this VM" },
    host: { type: "string", multiple: true, value: "HOST", help: "only events about this host" },
    job: { type: "string", multiple: true, value: "ID", help: "only events about this job" },
    since: {
      type: "string",
      value: "ID",
      help: "replay events after this event id first (0: all retained)",
    },
    count: { type: "string", value: "N", help: "exit after N events" },
  },
  notes: `Table output prints "TIME  TYPE  RESOURCE  DATA" lines; -o json prints one JSON object per
line ({"id","event","data"}), for scripts. The stream resumes after a dropped connection with
Last-Event-ID, so no event is lost or repeated. Ctrl-C stops.`,
  async run(ctx, input) {
    const client = await ctx.client();
    const count = input.opts.count === undefined
      ? Infinity
      : parseInteger(input.opts.count as string, "count");
    if (count < 1) throw InvalidArgumentError.field("--count", "must be at least 1");
    const refs = async (kind: "vm" | "host" | "job", flag: string) =>
      await Promise.all(
        ((input.opts[flag] as string[] | undefined) ?? []).map((r) => resolveId(client, kind, r)),
      );
    const resourceIds = [
      ...await refs("vm", "vm"),
      ...await refs("host", "host"),
      ...await refs("job", "job"),
    ];
    const names = ctx.output === "json" ? undefined : await new Names(client).load("vm", "host");
    let seen = 0;
    const stream = followEvents(client, "/v1/events", {
      query: {
        type: input.opts.type as string[] | undefined,
        resource_id: resourceIds.length ? resourceIds : undefined,
      },
      lastEventId: input.opts.since as string | undefined,
      signal: ctx.signal,
      onReconnect: (attempt, delay, reason) =>
        ctx.io.err(`events: ${reason}; reconnecting in ${delay} ms (attempt ${attempt})\n`),
    });
    for await (const ev of stream) {
      if (ctx.output === "json") {
        let data: unknown = ev.data;
        try {
          data = JSON.parse(ev.data);
        } catch { /* keep text */ }
        ctx.io.out(JSON.stringify({ id: ev.id ?? null, event: ev.event, data }) + "\n");
      } else {
        ctx.io.out(eventLine(ev, names));
      }
      if (++seen >= count) {
        await stream.return(undefined);
        break;
      }
    }
  },
};

/** `qarax version`. */
export const versionCommand: CommandSpec = {
  name: "version",
  summary: "Print the version, the Deno version and the git commit",
  run(ctx) {
    ctx.print(
      { version: VERSION, deno: Deno.version.deno, commit: commit() },
      () => `${versionLine("qarax")}\n`,
    );
    return Promise.resolve();
  },
};
