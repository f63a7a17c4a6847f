/**
 * The emulator's failure type: an HTTP status and CH's error chain (outermost first), exactly
 * as CH renders it (`["Error from API", "<action failed>", ..., "<root cause>"]`), plus the
 * top-level action messages and root causes CH uses, so every handler words them the same.
 */

/** A failed API call; `chain` becomes the JSON-array body. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly chain: string[]) {
    super(chain.join(": "));
    this.name = "ApiFailure";
  }
}

/** The second element of CH's chains, per action. */
export const ACTION = {
  boot: "The VM could not boot",
  create: "The VM could not be created",
  delete: "The VM could not be deleted",
  info: "The VM info is not available",
  pause: "The VM could not be paused",
  resume: "The VM could not resume",
  shutdown: "The VM could not shutdown",
  reboot: "The VM could not reboot",
  snapshot: "The VM could not be snapshotted",
  restore: "The VM could not be restored",
  vmmShutdown: "The VMM could not shutdown",
  resize: "The VM could not be resized",
  resizeDisk: "The disk could not be resized",
  resizeZone: "The memory zone could not be resized",
  addDevice: "The device could not be added to the VM",
  addUserDevice: "The user device could not be added to the VM",
  removeDevice: "The device could not be removed from the VM",
  addDisk: "The disk could not be added to the VM",
  addFs: "The fs could not be added to the VM",
  addGenericVhostUser: "The generic vhost-user device could not be added to the VM",
  addPmem: "The pmem device could not be added to the VM",
  addNet: "The network device could not be added to the VM",
  addVdpa: "The vDPA device could not be added to the VM",
  addVsock: "The vsock device could not be added to the VM",
  receiveMigration: "Error starting migration receiver",
  sendMigration: "Error starting migration sender",
  powerButton: "Error triggering power button",
  nmi: "Error triggering NMI",
} as const;

export type Action = keyof typeof ACTION;

/** Frequent root causes (VmError display strings). */
export const CAUSE = {
  notCreated: "VM is not created",
  missingConfig: "VM config is missing",
  alreadyCreated: "VM is already created",
  notRunning: "VM is not running",
  validate: "Failed to validate config",
  deviceManager: "Error from device manager",
  lockingError: "Error locking disk images: Another instance likely holds a lock",
  resizeDisk: "Failed resizing a disk image",
  resizeZone: "Failed resizing a memory zone",
  tooManyVsock: "Too many virtio-vsock devices",
} as const;

/** A VMM-level failure: `["Error from API", ACTION[action], ...causes]`. */
export function vmError(status: number, action: Action, ...causes: string[]): ApiFailure {
  return new ApiFailure(status, ["Error from API", ACTION[action], ...causes]);
}

/** `std::io::Error` display, as Rust prints it (`No such file or directory (os error 2)`). */
export function ioErrorText(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "No such file or directory (os error 2)";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied (os error 13)";
  if (err instanceof Deno.errors.AlreadyExists) return "File exists (os error 17)";
  if (err instanceof Deno.errors.AddrInUse) return "Address in use (os error 98)";
  if (err instanceof Deno.errors.NotADirectory) return "Not a directory (os error 20)";
  if (err instanceof Deno.errors.IsADirectory) return "Is a directory (os error 21)";
  const msg = (err as Error)?.message ?? String(err);
  const m = /^(.*?)(?: \(os error (\d+)\))/.exec(msg);
  return m ? `${m[1]} (os error ${m[2]})` : msg;
}
