/**
 * The one structured logger of both binaries: JSON lines when not on a TTY, readable text on
 * a TTY. Child loggers carry context fields (`request_id`, `vm_id`, `host_id`); fields whose
 * names look like secrets are redacted before anything is written.
 */
import { redactValue } from "../config/redact.ts";

/** Severity levels, lowest first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];
export type LogFormat = "json" | "text" | "auto";
export type LogFields = Record<string, unknown>;

/** Where formatted lines go; tests capture them. */
export type LogSink = (line: string, level: LogLevel) => void;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  sink?: LogSink;
  fields?: LogFields;
}

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A structured logger; create children with `child()` rather than new loggers. */
export class Logger {
  readonly level: LogLevel;
  readonly format: "json" | "text";
  readonly #sink: LogSink;
  readonly #fields: LogFields;
  readonly #min: number;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? "info";
    this.format = resolveFormat(options.format ?? "auto");
    this.#sink = options.sink ?? stderrSink;
    this.#fields = options.fields ?? {};
    this.#min = LOG_LEVELS.indexOf(this.level);
  }

  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      sink: this.#sink,
      fields: { ...this.#fields, ...fields },
    });
  }

  /** True when lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#min;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#write("error", msg, fields);
  }

  #write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const all = redactValue({ ...this.#fields, ...fields }) as LogFields;
    for (const [k, v] of Object.entries(all)) {
      if (v instanceof Error) all[k] = errorFields(v);
    }
    const time = new Date().toISOString();
    const line = this.format === "json"
      ? JSON.stringify({ time, level, msg, ...all })
      : formatText(time, level, msg, all);
    this.#sink(line, level);
  }
}

function resolveFormat(format: LogFormat): "json" | "text" {
  if (format !== "auto") return format;
  try {
    return Deno.stderr.isTerminal() ? "text" : "json";
  } catch {
    return "json";
  }
}

function errorFields(err: Error): LogFields {
  const out: LogFields = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.cause !== undefined) {
    out.cause = err.cause instanceof Error ? errorFields(err.cause) : String(err.cause);
  }
  return out;
}

function formatText(time: string, level: LogLevel, msg: string, fields: LogFields): string {
  const parts = Object.entries(fields).map(([k, v]) =>
    `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`
  );
  return `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${
    parts.length ? "  " + parts.join(" ") : ""
  }`;
}

let root = new Logger();

/** The process-wide root logger; binaries replace it once their config is loaded. */
export function logger(): Logger {
  return root;
}

/** Replaces the process-wide root logger. */
export function setLogger(next: Logger): void {
  root = next;
}
