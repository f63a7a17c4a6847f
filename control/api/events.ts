/**
 * `GET /v1/events`: a server-sent-event stream of VM and host status changes and job
 * progress, filtered by type and resource. Each event's SSE id is its id in the event log, so
 * a client that reconnects with `Last-Event-ID` (or `?last_event_id=`) first gets every event
 * it missed (within the retention window), then live ones, in order and without duplicates.
 * Streams end when the server shuts down; a client reading too slowly is disconnected and
 * resumes where it stopped.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  type EventFilter,
  type EventRow,
  eventsAfter,
  latestEventId,
  oldestEventId,
} from "../events/store.ts";
import { errors, Id, validationHook } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const Repeated = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item)]).optional().transform((v) =>
    v === undefined ? undefined : Array.isArray(v) ? v : [v]
  );

const EventsQuery = z.object({
  type: Repeated(z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$/)).openapi({
    description: "Repeatable; an event type (`vm.status_changed`) or a family (`vm`, `host`, " +
      "`network`, `job`)",
  }),
  resource_id: Repeated(Id).openapi({
    description: "Repeatable; events about this resource, including jobs working on it",
  }),
  resource_type: Repeated(z.string().regex(/^[a-z_]{1,64}$/)).openapi({
    description: "Repeatable; `vm`, `host`, `network` or `job`",
  }),
  last_event_id: z.coerce.number().int().min(0).optional().openapi({
    description: "Replay events after this id (the `Last-Event-ID` header does the same); " +
      "0 replays everything retained. Without it the stream starts with new events.",
  }),
});

/** Events a slow client may have queued before it is disconnected (it then resumes). */
const MAX_QUEUED = 10_000;

/** One SSE frame for an event. */
export function sseFrame(e: EventRow): string {
  const data = {
    id: e.id,
    time: e.time,
    type: e.type,
    resource_type: e.resource_type,
    resource_id: e.resource_id,
    data: e.data,
  };
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The events router. */
export function eventsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: "get",
      path: "/events",
      tags: ["events"],
      summary: "Stream events (server-sent events)",
      description: "Each event: `id` (resume with `Last-Event-ID`), `event` (its type) and " +
        "`data` (JSON: id, time, type, resource_type, resource_id, data). Types: " +
        "`vm.status_changed`, `vm.deleted`, `host.status_changed`, `host.stray_vms` (the VMs " +
        "a node runs without a record, when that set changes), `network.sync_failed` (a " +
        "node could not be given a network's new settings or DHCP reservations), " +
        "`job.created`, `job.started`, `job.progress`, `job.retrying`, `job.succeeded`, " +
        "`job.failed`, `job.cancelled`. A " +
        "`stream.truncated` event says events before the requested id were already deleted.",
      request: { query: EventsQuery },
      responses: {
        200: {
          description: "An endless text/event-stream",
          content: { "text/event-stream": { schema: z.string() } },
        },
        ...errors(422),
      },
    }),
    (c) => {
      const q = c.req.valid("query");
      const header = c.req.header("last-event-id");
      let from = q.last_event_id ?? null;
      if (from === null && header !== undefined && header !== "") {
        if (!/^\d{1,15}$/.test(header)) {
          throw InvalidArgumentError.field("Last-Event-ID", "must be an event id (a number)");
        }
        from = Number(header);
      }
      const filter: EventFilter = {
        types: q.type,
        resource_ids: q.resource_id,
        resource_types: q.resource_type,
      };
      return streamEvents(deps, filter, from);
    },
  );
  return app;
}

/** The SSE response: replay after `from` (when given), then live events. */
function streamEvents(deps: AppDeps, filter: EventFilter, from: number | null): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  let closed = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let live = false;
      // Without a position the stream starts at the newest committed event.
      let sent = from ?? Number.MAX_SAFE_INTEGER;
      const queued: EventRow[] = [];
      const write = (text: string) => {
        if (!closed) controller.enqueue(encoder.encode(text));
      };
      const close = () => {
        if (closed) return;
        closed = true;
        cleanup();
        try {
          controller.close();
        } catch { /* already closed */ }
      };
      const send = (e: EventRow) => {
        if (e.id <= sent) return;
        sent = e.id;
        write(sseFrame(e));
        if ((controller.desiredSize ?? 0) < -MAX_QUEUED) close();
      };
      const unsubscribe = deps.events.subscribe(filter, (e) => live ? send(e) : queued.push(e));
      const keepalive = setInterval(
        () => write(": keep-alive\n\n"),
        deps.config.events.keepalive_ms,
      );
      const onAbort = () => close();
      cleanup = () => {
        unsubscribe();
        clearInterval(keepalive);
        deps.shutdown.removeEventListener("abort", onAbort);
      };
      // A client that goes away cancels the stream (`cancel` below).
      deps.shutdown.addEventListener("abort", onAbort);
      write(": qarax events\n\n");
      (async () => {
        if (from === null) sent = await latestEventId(deps.sql);
        if (from !== null) {
          const oldest = await oldestEventId(deps.sql);
          if (from > 0 && oldest !== null && from < oldest - 1) {
            write(
              `event: stream.truncated\ndata: ${
                JSON.stringify({ requested_after: from, oldest_id: oldest })
              }\n\n`,
            );
          }
          for (;;) {
            const rows = await eventsAfter(deps.sql, sent, filter, 500);
            for (const e of rows) send(e);
            if (rows.length < 500 || closed) break;
          }
        }
        for (const e of queued.splice(0)) send(e);
        live = true;
      })().catch((err) => {
        deps.logger.warn("event stream replay failed", { err });
        close();
      });
    },
    cancel() {
      closed = true;
      cleanup();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}
