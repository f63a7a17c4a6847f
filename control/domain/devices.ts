/** Device ids of a VM's disks and NICs: `diskN` / `netN`, the lowest N not in use. */

/** The lowest `<prefix>N` not among `existing`. */
export function nextDeviceId(prefix: "disk" | "net", existing: Iterable<string>): string {
  const used = new Set(existing);
  for (let n = 0;; n++) {
    const id = `${prefix}${n}`;
    if (!used.has(id)) return id;
  }
}
