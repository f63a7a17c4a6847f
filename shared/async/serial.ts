/**
 * Running async work one piece at a time: a queue for one resource (a manager whose
 * operations must not interleave) and a keyed variant (one queue per file, per VM, ...).
 * A failed piece of work does not stop the ones queued after it.
 */

/** Runs the work given to it strictly one after another, in call order. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Queues `work`; resolves or rejects with its outcome. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#tail.catch(() => {}).then(work);
    this.#tail = next.catch(() => {});
    return next;
  }
}

/** One SerialQueue per key, dropped again when its work is done. */
export class KeyedSerialQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Queues `work` behind earlier work with the same `key`. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const next = (this.#tails.get(key) ?? Promise.resolve()).catch(() => {}).then(work);
    const tail = next.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }

  /** Keys with queued or running work. */
  get size(): number {
    return this.#tails.size;
  }
}
