/**
 * Where the CLI finds its server and token: flags (`--url`, `--token`) over environment
 * (`QARAX_URL`, `QARAX_TOKEN`) over the file `qarax login` writes
 * (`$XDG_CONFIG_HOME/qarax/cli.yaml`, else `~/.config/qarax/cli.yaml`, mode 0600) over the
 * default `http://127.0.0.1:8000`. The file keeps one token per server URL, and a token from
 * the file is only ever sent to the URL it was saved for.
 */
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

/** The server used when nothing else says which. */
export const DEFAULT_URL = "http://127.0.0.1:8000";

/** The file written by `qarax login`. */
export const CliFile = z.strictObject({
  /** The server used when no `--url` / `QARAX_URL` is given. */
  url: z.string().optional(),
  /** Bearer tokens by normalised server URL. */
  tokens: z.record(z.string(), z.string()).default({}),
});
export type CliFile = z.infer<typeof CliFile>;

/** Where a setting came from (for `qarax login` and error hints). */
export type Source = "flag" | "env" | "file" | "default";

/** The resolved connection settings. */
export interface Settings {
  url: string;
  urlSource: Source;
  token?: string;
  tokenSource?: Source;
}

/** The config file path: `$XDG_CONFIG_HOME/qarax/cli.yaml` or `$HOME/.config/qarax/cli.yaml`. */
export function configPath(env: (name: string) => string | undefined): string {
  const xdg = env("XDG_CONFIG_HOME");
  if (xdg && xdg.startsWith("/")) return `${xdg}/qarax/cli.yaml`;
  const home = env("HOME");
  if (!home) {
    throw new InvalidArgumentError(
      "cannot locate the CLI config file: neither XDG_CONFIG_HOME nor HOME is set",
    );
  }
  return `${home}/.config/qarax/cli.yaml`;
}

/**
 * A server URL in one canonical form: scheme added when missing (`host:8000` →
 * `http://host:8000`), no trailing slash, lower-case host. Throws for anything else.
 */
export function normalizeUrl(text: string, what = "url"): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw InvalidArgumentError.field(what, `invalid server URL "${text}"`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw InvalidArgumentError.field(
      what,
      `the server URL must be http:// or https://, not ${u.protocol}//`,
    );
  }
  if (u.search || u.hash || u.username || u.password) {
    throw InvalidArgumentError.field(
      what,
      "the server URL takes no query, fragment or credentials (use --token)",
    );
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
}

/** Reads the config file; undefined when there is none. `warn` hears about loose permissions. */
export async function readCliFile(
  path: string,
  warn: (message: string) => void = () => {},
): Promise<CliFile | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text) ?? {};
  } catch (err) {
    throw new InvalidArgumentError(`${path} is not valid YAML: ${(err as Error).message}`);
  }
  const result = CliFile.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new InvalidArgumentError(
      `${path}: ${issue.path.join(".") || "(file)"}: ${issue.message}`,
    );
  }
  if (Object.keys(result.data.tokens).length) {
    const mode = (await Deno.stat(path)).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      warn(`${path} holds tokens but is readable by others; run: chmod 600 ${path}`);
    }
  }
  return result.data;
}

/** Writes the config file atomically with mode 0600 (its directory 0700). */
export async function writeCliFile(path: string, file: CliFile): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const text = "# Written by `qarax login`. Tokens are secrets: keep this file mode 0600.\n" +
    stringifyYaml(file);
  await Deno.writeTextFile(tmp, text, { mode: 0o600 });
  try {
    await Deno.chmod(tmp, 0o600); // the umask may have narrowed or the file pre-existed
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Applies the precedence flag > env > file > default to the URL and the token. */
export function resolveSettings(input: {
  flags: { url?: string; token?: string };
  env: (name: string) => string | undefined;
  file?: CliFile;
}): Settings {
  const { flags, env, file } = input;
  const envUrl = env("QARAX_URL") || undefined;
  const [rawUrl, urlSource]: [string, Source] = flags.url !== undefined
    ? [flags.url, "flag"]
    : envUrl !== undefined
    ? [envUrl, "env"]
    : file?.url !== undefined
    ? [file.url, "file"]
    : [DEFAULT_URL, "default"];
  const url = normalizeUrl(rawUrl, urlSource === "flag" ? "--url" : "QARAX_URL");
  const envToken = env("QARAX_TOKEN") || undefined;
  if (flags.token !== undefined) return { url, urlSource, token: flags.token, tokenSource: "flag" };
  if (envToken !== undefined) return { url, urlSource, token: envToken, tokenSource: "env" };
  const saved = file?.tokens[url];
  if (saved !== undefined) return { url, urlSource, token: saved, tokenSource: "file" };
  return { url, urlSource };
}
