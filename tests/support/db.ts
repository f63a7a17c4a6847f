/**
 * Throw-away PostgreSQL databases for tests: each caller gets a fresh database on the server
 * named by TEST_DATABASE_URL (default: postgres@127.0.0.1:5432), dropped afterwards.
 */
import type { Sql } from "postgres";
import { connectPostgres } from "../../control/db/connect.ts";

/** The server tests create their databases on. */
export const TEST_DATABASE_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

/** A fresh database: its URL, a pool on it, and `drop()` to remove both. */
export interface TestDatabase {
  name: string;
  url: string;
  sql: Sql;
  drop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates a uniquely named empty database. */
export async function createTestDatabase(max = 4): Promise<TestDatabase> {
  const name = `qarax_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connectPostgres(TEST_DATABASE_URL, { max: 1 });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(TEST_DATABASE_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = connectPostgres(url, { max });
  const drop = async () => {
    await sql.end({ timeout: 5 });
    const a = connectPostgres(TEST_DATABASE_URL, { max: 1 });
    try {
      await a.unsafe(`drop database if exists ${name} with (force)`);
    } finally {
      await a.end();
    }
  };
  return { name, url, sql, drop, [Symbol.asyncDispose]: drop };
}
