/**
 * The node agent's own durable state (attached storage pools, attached networks): small JSON
 * documents, one file each, under the node's state directory. A write replaces the file
 * atomically (temp file, fsync, rename, fsync of the directory), so a crash at any point leaves
 * either the old or the new content, never a torn file. Updates of one document are serialized.
 */
import { join } from "node:path";
import type { z } from "zod";
import { KeyedSerialQueue } from "../../shared/async/serial.ts";
import { InternalError } from "../../shared/errors/errors.ts";
import { type AtomicWriteHooks, TEMP_MARK, writeFileAtomic } from "./atomic.ts";

/** On-disk envelope: a format number so later versions can migrate old files. */
const FORMAT = 1;
const DOC_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** One queue per document path, shared by every StateDocument of this process. */
const queues = new KeyedSerialQueue();

/** The directory holding the node's state documents. */
export class StateStore {
  private constructor(readonly dir: string) {}

  /** Opens (creating it if needed) the state directory and removes temp files of crashed writes. */
  static async open(dir: string): Promise<StateStore> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.includes(`.json${TEMP_MARK}`)) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
      }
    }
    return new StateStore(dir);
  }

  /** A typed document `<dir>/<name>.json`; `initial` is its value before the first write. */
  document<T>(
    name: string,
    schema: z.ZodType<T>,
    initial: T,
    hooks?: AtomicWriteHooks,
  ): StateDocument<T> {
    if (!DOC_NAME.test(name)) throw new InternalError(`invalid state document name: ${name}`);
    return new StateDocument(join(this.dir, `${name}.json`), schema, initial, hooks);
  }
}

/** One JSON document of the state store. */
export class StateDocument<T> {
  constructor(
    readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly initial: T,
    private readonly hooks?: AtomicWriteHooks,
  ) {}

  /** The current value (`initial` when never written). A corrupt file is an error, never reset. */
  read(): Promise<T> {
    return queues.run(this.path, () => this.#load());
  }

  /** Replaces the value with `fn(current)` durably; concurrent updates run one after another. */
  update(fn: (current: T) => T | Promise<T>): Promise<T> {
    return queues.run(this.path, async () => {
      const next = this.#check(await fn(await this.#load()), "new value");
      const text = JSON.stringify({ format: FORMAT, data: next }, null, 2) + "\n";
      await writeFileAtomic(this.path, new TextEncoder().encode(text), { hooks: this.hooks });
      return next;
    });
  }

  async #load(): Promise<T> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return structuredClone(this.initial);
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InternalError(`state file ${this.path} is not valid JSON`, { cause: err });
    }
    const envelope = parsed as { format?: unknown; data?: unknown };
    if (envelope?.format !== FORMAT) {
      throw new InternalError(
        `state file ${this.path} has format ${
          JSON.stringify(envelope?.format)
        }, expected ${FORMAT}`,
      );
    }
    return this.#check(envelope.data, "content");
  }

  #check(value: unknown, what: string): T {
    const result = this.schema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new InternalError(
        `state file ${this.path}: invalid ${what} at ${
          issue.path.join(".") || "(root)"
        }: ${issue.message}`,
      );
    }
    return result.data;
  }
}
