/**
 * The commands every resource has (list, get, create, update, delete) built from one
 * description per resource, and the action runner: a request that may answer `202` + a job,
 * followed with `--wait` (live progress, non-zero exit when the job fails).
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import type { ApiClient, Query } from "./client.ts";
import { bodyFromFlags, type Field, fieldOptions, flagsOf, parseInteger } from "./fields.ts";
import type { CommandSpec, Context, Input, OptionSpec } from "./framework.ts";
import { type Column, detail, table } from "./output.ts";
import { type KindName, KINDS, Names, resolveId } from "./resolve.ts";
import { formatDuration, parseDuration } from "./units.ts";
import { type Job, jobLine, jobOf, waitForJob } from "./wait.ts";

/** What the generic commands need to know about a resource. */
export interface ResourceDef<T = Record<string, unknown>> {
  kind: KindName;
  /** Plural for messages (`vms`, `storage objects`). */
  plural: string;
  /** List columns; `names` turns related ids into names. */
  columns(names: Names): Column<T>[];
  /** Kinds whose names the columns show (loaded before rendering). */
  nameKinds?: KindName[];
  fields: Field[];
  /** Extra text after `get` in table mode (e.g. a VM's disks). */
  more?(client: ApiClient, obj: T): Promise<string>;
  /** Flags that narrow a name lookup (a storage object's `--pool`), and how. */
  scope?: {
    options: Record<string, OptionSpec>;
    narrow(ctx: Context, input: Input): Promise<{ narrow?: Query; hint?: string }>;
  };
}

/** The id of the resource a get/update/delete names, honouring `def.scope`. */
export async function idOf(
  ctx: Context,
  def: Pick<ResourceDef, "kind" | "scope">,
  input: Input,
  ref: string,
): Promise<string> {
  const client = await ctx.client();
  const scope = def.scope ? await def.scope.narrow(ctx, input) : {};
  return await resolveId(client, def.kind, ref, scope);
}

/** `--wait` / `--timeout` of every command that may start a job. */
export const WAIT_OPTIONS: Record<string, OptionSpec> = {
  wait: {
    type: "boolean",
    short: "w",
    help: "follow the job until it ends (live progress); exit 1 if it fails",
  },
  timeout: {
    type: "string",
    value: "DURATION",
    help: "with --wait: give up after this long, exit 5 (default 15m)",
  },
};

/** Options of commands that ask the server to act: `--wait`, `--timeout`, `--idempotency-key`. */
export const ACTION_OPTIONS: Record<string, OptionSpec> = {
  ...WAIT_OPTIONS,
  "idempotency-key": {
    type: "string",
    value: "KEY",
    help: "sent as Idempotency-Key: repeating the command with the same key returns the same job",
  },
};

const DEFAULT_WAIT_MS = 15 * 60_000;

/** `--limit` of list commands. */
const LIMIT_OPTION: Record<string, OptionSpec> = {
  limit: { type: "string", value: "N", help: "show at most N items (default: all)" },
};

/** A noun as help text writes it (`vm` → `VM`, `vms` → `VMs`). */
function title(noun: string): string {
  return noun.replace(/\bvm(s?)\b/g, "VM$1");
}

/** "a VM", "an instance type": the noun with its indefinite article. */
export function aNoun(noun: string): string {
  const t = title(noun);
  return `${/^[aeiou]/i.test(t) ? "an" : "a"} ${t}`;
}

/** `vm web-1` style label for messages. */
export function label(kind: KindName, obj: { name?: unknown; id?: unknown }): string {
  return `${KINDS[kind].noun} ${obj.name ?? obj.id}`;
}

/** The list command. */
export function listCommand<T>(def: ResourceDef<T>, extra: Partial<CommandSpec> = {}): CommandSpec {
  return {
    name: "list",
    aliases: ["ls"],
    summary: `List ${title(def.plural)}`,
    options: { ...fieldOptions(def.fields, "filter"), ...LIMIT_OPTION },
    fieldFlags: flagsOf(def.fields),
    async run(ctx, input) {
      const client = await ctx.client();
      const query = await bodyFromFlags(def.fields, input.opts, "filter", ctx.client) as Query;
      const max = input.opts.limit === undefined
        ? Infinity
        : parseInteger(input.opts.limit as string, "limit");
      const page = await client.list<T>(KINDS[def.kind].path, query, max);
      await printList(ctx, def, page);
    },
    ...extra,
  };
}

/** Prints a page as JSON (the API's envelope) or a table. */
export async function printList<T>(
  ctx: Context,
  def: Pick<ResourceDef<T>, "columns" | "nameKinds" | "plural">,
  page: { items: T[]; next_cursor: string | null },
): Promise<void> {
  if (ctx.output === "json") return ctx.print(page, () => "");
  if (!page.items.length) {
    ctx.io.err(`No ${def.plural} found.\n`);
    return;
  }
  const names = await new Names(await ctx.client()).load(...def.nameKinds ?? []);
  ctx.io.out(table(page.items, def.columns(names)));
  if (page.next_cursor) ctx.io.err(`(more ${def.plural} exist; raise --limit to see them)\n`);
}

/** The get command. */
export function getCommand<T extends Record<string, unknown>>(def: ResourceDef<T>): CommandSpec {
  const noun = KINDS[def.kind].noun;
  return {
    name: "get",
    aliases: ["show"],
    summary: `Show one ${title(noun)} (name or id)`,
    args: [noun.replaceAll(" ", "-")],
    options: def.scope?.options,
    async run(ctx, input) {
      const client = await ctx.client();
      const id = await idOf(ctx, def, input, Object.values(input.args)[0]!);
      const obj = await client.get<T>(`${KINDS[def.kind].path}/${id}`);
      if (ctx.output === "json") return ctx.print(obj, () => "");
      ctx.io.out(detail(obj));
      if (def.more) ctx.io.out(await def.more(client, obj));
    },
  };
}

/** The create command: `<name>` plus the resource's flags. */
export function createCommand<T extends { id: string; name?: string }>(
  def: ResourceDef<T>,
  extra: Partial<CommandSpec> & {
    /** Adjusts the body after the flags (e.g. `--disk` lists). */
    build?(ctx: Context, input: Input, body: Record<string, unknown>): Promise<void>;
    /** Runs after the create (e.g. `vm create --start`). */
    after?(ctx: Context, input: Input, created: T): Promise<number | void>;
    /** The success message's verb (default `created`). */
    verb?: string;
  } = {},
): CommandSpec {
  const { build, after, options, fieldFlags, verb = "created", ...spec } = extra;
  return {
    name: "create",
    summary: `Create ${aNoun(KINDS[def.kind].noun)}`,
    args: ["name"],
    options: { ...fieldOptions(def.fields, "create"), ...options },
    fieldFlags: { ...flagsOf(def.fields), name: "<name>", ...fieldFlags },
    async run(ctx, input) {
      const client = await ctx.client();
      const body = {
        name: input.args.name,
        ...await bodyFromFlags(def.fields, input.opts, "create", ctx.client),
      };
      await build?.(ctx, input, body);
      const { body: created } = await client.request<T>("POST", KINDS[def.kind].path, { body });
      ctx.print(created, () => `${label(def.kind, created)} ${verb} (id ${created.id})\n`);
      return await after?.(ctx, input, created);
    },
    ...spec,
  };
}

/** The update command: a merge patch of the flags that were given. */
export function updateCommand<T extends { id: string; name?: string }>(
  def: ResourceDef<T>,
  extra: Partial<CommandSpec> & {
    /** Adds to the patch after the flags (e.g. a template's `--network` list). */
    build?(ctx: Context, input: Input, patch: Record<string, unknown>): Promise<void>;
  } = {},
): CommandSpec {
  const noun = KINDS[def.kind].noun;
  const { build, options: more, fieldFlags, ...spec } = extra;
  const options = { ...fieldOptions(def.fields, "update"), ...more };
  return {
    name: "update",
    summary: `Change a ${title(noun)} (only the flags given)`,
    args: [noun.replaceAll(" ", "-")],
    options: { ...options, ...def.scope?.options },
    fieldFlags: { ...flagsOf(def.fields), ...fieldFlags },
    async run(ctx, input) {
      const patch = await bodyFromFlags(def.fields, input.opts, "update", ctx.client);
      await build?.(ctx, input, patch);
      if (!Object.keys(patch).length) {
        throw new InvalidArgumentError(
          `nothing to change: give at least one of ${
            Object.keys(options).map((o) => `--${o}`).join(", ")
          }`,
        );
      }
      const client = await ctx.client();
      const id = await idOf(ctx, def, input, Object.values(input.args)[0]!);
      const { body: updated } = await client.request<T>("PATCH", `${KINDS[def.kind].path}/${id}`, {
        body: patch,
        headers: { "content-type": "application/merge-patch+json" },
      });
      ctx.print(updated, () => `${label(def.kind, updated)} updated\n`);
    },
    ...spec,
  };
}

/** The delete command (`204`, or `202` + a job the user may `--wait` for). */
export function deleteCommand(
  def: Pick<ResourceDef, "kind" | "scope">,
  extra: Partial<CommandSpec> & {
    /** Query parameters from extra flags (e.g. a VM's `--force`). */
    query?(input: Input): Query;
  } = {},
): CommandSpec {
  const noun = KINDS[def.kind].noun;
  const { query, options, ...spec } = extra;
  return {
    name: "delete",
    aliases: ["rm"],
    summary: `Delete a ${title(noun)}`,
    args: [noun.replaceAll(" ", "-")],
    options: { ...options, ...ACTION_OPTIONS, ...def.scope?.options },
    async run(ctx, input) {
      const ref = Object.values(input.args)[0]!;
      const id = await idOf(ctx, def, input, ref);
      return await runAction(ctx, input, {
        method: "DELETE",
        path: `${KINDS[def.kind].path}/${id}`,
        query: query?.(input),
        done: `${noun} ${ref} deleted`,
      });
    },
    ...spec,
  };
}

/** What an action sends and how its success reads. */
export interface Action {
  method: string;
  path: string;
  query?: Query;
  body?: unknown;
  /** Message when the action (or its job) succeeded, e.g. `vm web-1 started`; a function
   * gets the answer's body (or the job's result). */
  done: string | ((body: Record<string, unknown>) => string);
}

/**
 * Sends an action. A `202` + job is reported (or followed with `--wait`); any other success
 * prints `done`. Returns the exit code.
 */
export async function runAction(ctx: Context, input: Input, action: Action): Promise<number> {
  const client = await ctx.client();
  const key = input.opts["idempotency-key"] as string | undefined;
  const answer = await client.request<unknown>(action.method, action.path, {
    query: action.query,
    body: action.body,
    headers: key !== undefined ? { "idempotency-key": key } : {},
  });
  const job = answer.status === 202 ? jobOf(answer.body, answer.headers) : undefined;
  if (!job) {
    const body = (answer.body ?? {}) as Record<string, unknown>;
    ctx.print(answer.body ?? {}, () => `${doneText(action.done, body)}\n`);
    return 0;
  }
  return await followJob(ctx, input, job.id, job.job, action.done);
}

function doneText(done: Action["done"], body: Record<string, unknown>): string {
  return typeof done === "string" ? done : done(body);
}

/** How long `--wait` follows a job (`--timeout`, default 15 minutes). */
export function waitTimeoutMs(input: Input): number {
  return input.opts.timeout === undefined
    ? DEFAULT_WAIT_MS
    : parseDuration(input.opts.timeout as string, "--timeout");
}

/** Reports a queued job, or waits for it with `--wait`. */
export async function followJob(
  ctx: Context,
  input: Input,
  id: string,
  queued: Job | undefined,
  done: Action["done"],
): Promise<number> {
  if (!input.opts.wait) {
    const job = queued ?? await (await ctx.client()).get<Job>(`/v1/jobs/${id}`);
    ctx.print(job, () => `${jobLine(job)}\n(follow it with: qarax job wait ${id})\n`);
    return 0;
  }
  const started = Date.now();
  const job = await waitForJob(await ctx.client(), id, {
    io: ctx.io,
    timeoutMs: waitTimeoutMs(input),
    signal: ctx.signal,
  });
  const took = formatDuration(Date.now() - started);
  const text = doneText(done, job.result ?? {});
  ctx.print(
    job,
    () =>
      text
        ? `${text} (job ${job.id} ${job.status} in ${took})\n`
        : `job ${job.id} ${job.type} ${job.status} in ${took}\n`,
  );
  return 0;
}

/** A list of a sub-collection (`vm disk list`, `network ips`): resolve the parent, print. */
export function subListCommand<T>(spec: {
  name: string;
  aliases?: string[];
  summary: string;
  parent: KindName;
  /** The parent's argument name (`vm`, `network`). */
  arg: string;
  /** The sub-collection's path for the parent's id. */
  path(id: string): string;
  view: Pick<ResourceDef<T>, "plural" | "columns" | "nameKinds">;
}): CommandSpec {
  return {
    name: spec.name,
    aliases: spec.aliases,
    summary: spec.summary,
    args: [spec.arg],
    async run(ctx, input) {
      const client = await ctx.client();
      const id = await resolveId(client, spec.parent, input.args[spec.arg]!);
      await printList(ctx, spec.view, await client.list<T>(spec.path(id)));
    },
  };
}

/**
 * `attach`, `detach` and `hosts` of a resource that hosts take part in (networks, pools):
 * `POST <collection>/{id}/hosts`, `DELETE <collection>/{id}/hosts/{host}`, and the list.
 */
export function hostAttachmentCommands<A>(kind: "network" | "pool", spec: {
  attachSummary: string;
  /** Extra attach flags and the body fields they set. */
  options?: Record<string, OptionSpec>;
  fieldFlags?: Record<string, string>;
  body?(input: Input): Record<string, unknown>;
  columns(names: Names): Column<A>[];
}): CommandSpec[] {
  const noun = kind === "pool" ? "pool" : "network";
  const base = (id: string) => `${KINDS[kind].path}/${id}/hosts`;
  const ids = async (ctx: Context, input: Input) => {
    const client = await ctx.client();
    return [
      await resolveId(client, kind, input.args[noun]!),
      await resolveId(client, "host", input.args.host!),
    ];
  };
  return [
    {
      name: "attach",
      summary: spec.attachSummary,
      args: [noun, "host"],
      options: { ...spec.options, ...ACTION_OPTIONS },
      fieldFlags: { host_id: "<host>", ...spec.fieldFlags },
      async run(ctx, input) {
        const [id, host] = await ids(ctx, input);
        return await runAction(ctx, input, {
          method: "POST",
          path: base(id),
          body: { host_id: host, ...spec.body?.(input) },
          done: (a) =>
            `${noun} ${input.args[noun]} attached to host ${input.args.host}${
              a.status ? ` (${a.status})` : ""
            }`,
        });
      },
    },
    {
      name: "detach",
      summary: `Detach the ${noun} from a host`,
      args: [noun, "host"],
      options: ACTION_OPTIONS,
      async run(ctx, input) {
        const [id, host] = await ids(ctx, input);
        return await runAction(ctx, input, {
          method: "DELETE",
          path: `${base(id)}/${host}`,
          done: `${noun} ${input.args[noun]} detached from host ${input.args.host}`,
        });
      },
    },
    subListCommand<A>({
      name: "hosts",
      summary: `List the hosts a ${noun} is attached to`,
      parent: kind,
      arg: noun,
      path: base,
      view: { plural: "attachments", nameKinds: ["host"], columns: spec.columns },
    }),
  ];
}
