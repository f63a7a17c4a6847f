/**
 * The VMM's identity as read from `vmm.ping`: parsed crate version (the number to gate
 * behaviour on; the YAML's `info.version` never changes), the release named by
 * `build_version`, and the compiled-in features, including the emulator's marker.
 */
import { InternalError } from "../../shared/errors/errors.ts";
import type { VmmPingResponse } from "./types.ts";

/** A parsed `major.minor.patch`. */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
}

/** The feature our emulator reports, so callers can tell it from a real CH. */
export const EMULATOR_FEATURE = "qarax-emulator";

/** What one VMM process is: versions, features and pid. */
export interface VmmVersion {
  /** Crate version from `version` (e.g. 54.0.0 on main after v53.0). */
  version: SemVer;
  /** Release named by `build_version` (`v53.0-246-g…` → 53.0.0), when it names one. */
  release: SemVer | null;
  /** `build_version` verbatim. */
  build: string;
  features: string[];
  pid: number | null;
  /** True for the qarax CH emulator. */
  emulated: boolean;
}

/** Parses `1.2.3`, `v1.2`, `v53.0-246-gae44c29`...; null when there is no version number. */
export function parseSemVer(text: string): SemVer | null {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0) };
}

/** Orders two versions (negative, zero, positive). */
export function compareSemVer(a: SemVer, b: SemVer): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** Builds the version record from a ping answer; throws InternalError if it has no version. */
export function vmmVersionOf(ping: VmmPingResponse): VmmVersion {
  const version = parseSemVer(ping.version);
  if (!version) throw new InternalError(`vmm.ping: unparsable version ${ping.version}`);
  const build = ping.build_version ?? `v${ping.version}`;
  const features = ping.features ?? [];
  return {
    version,
    release: parseSemVer(build),
    build,
    features,
    pid: ping.pid ?? null,
    emulated: features.includes(EMULATOR_FEATURE),
  };
}

/** True when the VMM's crate version is at least `major.minor.patch`. */
export function versionAtLeast(v: VmmVersion, major: number, minor = 0, patch = 0): boolean {
  return compareSemVer(v.version, { major, minor, patch }) >= 0;
}

/** True when the VMM was built with `feature`. */
export function hasFeature(v: VmmVersion, feature: string): boolean {
  return v.features.includes(feature);
}
