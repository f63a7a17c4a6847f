/**
 * An unbounded push channel read as an async iterable: producers that are callbacks (WebSocket
 * messages, test scripts) feed consumers that want a stream (a gRPC request stream). One reader.
 */

/** Values pushed until `end()`; iterating yields them in order, then finishes. */
export class PushChannel<T> implements AsyncIterable<T> {
  #queue: T[] = [];
  #wake: (() => void) | null = null;
  #ended = false;

  /** Queues a value (ignored after `end()`). */
  push(value: T): void {
    if (this.#ended) return;
    this.#queue.push(value);
    this.#wake?.();
  }

  /** No more values: the reader finishes after the queued ones. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  get ended(): boolean {
    return this.#ended;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      while (this.#queue.length) yield this.#queue.shift()!;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }
}
