/**
 * Units the CLI reads and prints: sizes (`2GiB`, `512MiB`, `10G`, plain bytes), durations
 * (`90s`, `10m`), and their human-readable forms for tables.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

const BINARY: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  // Decimal units mean what they say (a "GB" is 10^9 bytes).
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/**
 * Parses a size: bytes (`1073741824`), binary units (`512MiB`, `2GiB`, `2G` = 2 GiB as in
 * qemu-img) or decimal units (`2GB` = 2·10⁹). `what` names the flag in the error.
 */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const factor = m ? BINARY[m[2].toLowerCase()] : undefined;
  if (!m || factor === undefined) {
    throw InvalidArgumentError.field(
      what,
      `invalid size "${text}": use bytes or a number with KiB, MiB, GiB or TiB (e.g. 512MiB, 2GiB)`,
    );
  }
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) {
    throw InvalidArgumentError.field(what, `invalid size "${text}": not a whole number of bytes`);
  }
  return bytes;
}

/** `1073741824` → `1 GiB`, `1610612736` → `1.5 GiB`, `1000` → `1000 B`. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, "");
  return `${text} ${units[i]}`;
}

/** Parses `30s`, `10m`, `1h`, `1h30m` or plain seconds into milliseconds. */
export function parseDuration(text: string, what = "duration"): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]];
    matched += m[0].length;
  }
  if (matched === 0 || matched !== text.length) {
    throw InvalidArgumentError.field(
      what,
      `invalid duration "${text}": use e.g. 90s, 10m, 1h30m`,
    );
  }
  return total;
}

/** A short elapsed time: `45s`, `3m`, `2h`, `5d`. */
export function formatAge(from: string | Date | null | undefined, now: Date): string {
  if (!from) return "-";
  const ms = now.getTime() - new Date(from).getTime();
  if (!Number.isFinite(ms)) return "-";
  return formatDuration(Math.max(0, ms), true);
}

/** `3.2s`, `2m5s`, `1h2m`; `coarse` keeps only the largest unit. */
export function formatDuration(ms: number, coarse = false): string {
  const s = ms / 1000;
  if (s < 60) return coarse ? `${Math.floor(s)}s` : `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return coarse ? `${m}m` : `${m}m${Math.round(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return coarse ? `${h}h` : `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d`;
}
