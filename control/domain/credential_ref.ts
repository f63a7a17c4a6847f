/**
 * Credential references: how a request names a secret without containing it. `env://NAME` is
 * an environment variable of the control-plane process, `file:///abs/path` a file on its host.
 * The API checks only the syntax; the secret is read when a job needs it, so it is never
 * stored in the database, returned by the API or logged (only the reference is).
 */
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";

const ENV_REF = /^env:\/\/([A-Za-z_][A-Za-z0-9_]{0,127})$/;
const FILE_REF = /^file:\/\/(\/[A-Za-z0-9_.@%+=:,\/-]{1,4095})$/;

/** A parsed reference. */
export type CredentialRef = { kind: "env"; name: string } | { kind: "file"; path: string };

/** Why `ref` is not a valid reference, or null when it is. */
export function credentialRefProblem(ref: string): string | null {
  if (ENV_REF.test(ref)) return null;
  const file = FILE_REF.exec(ref);
  if (file) {
    return file[1].split("/").some((p) => p === "." || p === "..")
      ? "file:// paths must be absolute without . or .. components"
      : null;
  }
  return "expected env://NAME (an environment variable of the control plane) or " +
    "file:///absolute/path (a file on the control plane host)";
}

/** Parses a reference; throws InvalidArgumentError naming `field` when it is not one. */
export function parseCredentialRef(ref: string, field: string): CredentialRef {
  const problem = credentialRefProblem(ref);
  if (problem) throw InvalidArgumentError.field(field, problem);
  const env = ENV_REF.exec(ref);
  if (env) return { kind: "env", name: env[1] };
  return { kind: "file", path: FILE_REF.exec(ref)![1] };
}

/**
 * Reads the secret a reference names (at job run time). A missing variable or unreadable file
 * is a FailedPreconditionError naming the reference and `field`, never the secret.
 */
export async function resolveCredential(
  ref: string,
  field: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<string> {
  const parsed = parseCredentialRef(ref, field);
  if (parsed.kind === "env") {
    const value = env(parsed.name);
    if (value === undefined || value === "") {
      throw new FailedPreconditionError(
        `${field} ${ref}: the control plane's environment has no ${parsed.name} (or it is empty)`,
      );
    }
    return value;
  }
  try {
    return await Deno.readTextFile(parsed.path);
  } catch (err) {
    throw new FailedPreconditionError(
      `${field} ${ref}: cannot read ${parsed.path} on the control plane host (${
        (err as Error).name
      })`,
    );
  }
}
