import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { formatAge, formatBytes, formatDuration, parseDuration, parseSize } from "./units.ts";

Deno.test("parseSize reads bytes, binary units (qemu-img style) and decimal units", () => {
  const cases: [string, number][] = [
    ["1073741824", 1073741824],
    ["512MiB", 512 * 1024 ** 2],
    ["2GiB", 2 * 1024 ** 3],
    ["2gib", 2 * 1024 ** 3],
    ["2G", 2 * 1024 ** 3],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["64 KiB", 64 * 1024],
    ["1TiB", 1024 ** 4],
    ["2GB", 2e9],
    ["10MB", 10e6],
    ["0", 0],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

Deno.test("parseSize rejects what it cannot read exactly, naming the flag", () => {
  for (
    const text of ["", "2 gigs", "GiB", "-1GiB", "1.5", "0.3KiB", "1e3", "2XB", "9999999999TiB"]
  ) {
    assert.throws(() => parseSize(text, "--memory"), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, text);
      assert.equal(err.details[0].field, "--memory");
      return true;
    });
  }
});

Deno.test("formatBytes picks the largest binary unit and trims zeros", () => {
  assert.equal(formatBytes(1073741824), "1 GiB");
  assert.equal(formatBytes(1610612736), "1.5 GiB");
  assert.equal(formatBytes(512 * 1024 ** 2), "512 MiB");
  assert.equal(formatBytes(1000), "1000 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(20 * 1024 ** 3 + 1), "20 GiB");
  assert.equal(formatBytes(null), "-");
});

Deno.test("durations parse and print", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("45"), 45_000);
  for (const bad of ["", "10x", "m", "10m junk", "1h 2m"]) {
    assert.throws(() => parseDuration(bad), InvalidArgumentError, bad);
  }
  assert.equal(formatDuration(3200), "3.2s");
  assert.equal(formatDuration(125_000), "2m5s");
  const now = new Date("2026-01-02T00:00:00Z");
  assert.equal(formatAge("2026-01-01T23:59:15Z", now), "45s");
  assert.equal(formatAge("2026-01-01T21:00:00Z", now), "3h");
  assert.equal(formatAge("2025-12-20T00:00:00Z", now), "13d");
  assert.equal(formatAge(null, now), "-");
});
