/**
 * MAC assignment for NICs: locally administered unicast addresses drawn from 40 random bits,
 * stored with the NIC so they never change; the database's unique key decides collisions and
 * the caller draws again.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { isUnicastMac, localMac, normalizeMac } from "../../shared/net/ip.ts";

/** A fresh locally administered unicast MAC (first octet 0x52). */
export function generateMac(random: (n: number) => Uint8Array = randomBytes): string {
  return localMac(random(5));
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Validates a MAC a user asked for: normalised, unicast, not all zeros. */
export function checkRequestedMac(text: string, field = "mac_address"): string {
  let mac: string;
  try {
    mac = normalizeMac(text);
  } catch {
    throw InvalidArgumentError.field(field, `"${text}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  }
  if (!isUnicastMac(mac) || mac === "00:00:00:00:00:00") {
    throw InvalidArgumentError.field(field, `${mac} is not a unicast MAC address`);
  }
  return mac;
}
