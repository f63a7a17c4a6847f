/**
 * Strict patterns for every name that can reach a command line or a file path: interface
 * names (bridges, taps, parents), VM and device ids, and absolute paths. Callers validate at
 * the edge with these and pass only validated values to `shared/cmd/run.ts`.
 */
import { InvalidArgumentError } from "../errors/errors.ts";

/** Linux interface names: 1-15 chars, starting with a letter or digit. */
export const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** VM ids (UUIDs in practice): used as directory names on the node. */
export const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Device ids inside a VM (`disk0`, `net1`, `rootfs`); CH reserves ids starting with `__`. */
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$/;

/** Absolute paths made of safe characters, with no `.`/`..` segments or empty segments. */
export const ABSOLUTE_PATH = /^(\/[A-Za-z0-9_@+=:,.-]+)+\/?$|^\/$/;

/** Returns `name` if it is a valid Linux interface name, else throws naming `field`. */
export function interfaceName(name: string, field = "interface"): string {
  if (!INTERFACE_NAME.test(name)) {
    throw InvalidArgumentError.field(
      field,
      `"${name}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -, starting with a letter or digit)`,
    );
  }
  return name;
}

/** Returns `id` if it is a valid VM id, else throws. */
export function vmId(id: string, field = "vm_id"): string {
  if (!VM_ID.test(id)) {
    throw InvalidArgumentError.field(field, `"${id}" is not a valid VM id`);
  }
  return id;
}

/** Returns `id` if it is a valid device id, else throws. */
export function deviceId(id: string, field = "id"): string {
  if (!DEVICE_ID.test(id)) {
    throw InvalidArgumentError.field(field, `"${id}" is not a valid device id`);
  }
  return id;
}

/** Returns `path` if it is a clean absolute path of safe characters, else throws. */
export function absolutePath(path: string, field = "path"): string {
  const segments = path.split("/").slice(1);
  if (
    !ABSOLUTE_PATH.test(path) ||
    segments.some((s, i) => s === "." || s === ".." || (s === "" && i < segments.length - 1))
  ) {
    throw InvalidArgumentError.field(
      field,
      `"${path}" is not a clean absolute path (no .. segments; letters, digits, _ @ + = : , . -)`,
    );
  }
  return path;
}
