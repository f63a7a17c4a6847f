/**
 * The migration list, in order. Each file is a text import so that bundles and compiled
 * binaries embed the SQL; a test checks that every `.sql` file in this folder is listed here.
 */
import m0001 from "./0001_init.sql" with { type: "text" };
import m0002 from "./0002_resources.sql" with { type: "text" };
import m0003 from "./0003_orchestration.sql" with { type: "text" };
import m0004 from "./0004_job_cancel.sql" with { type: "text" };
import m0005 from "./0005_local_object_host.sql" with { type: "text" };
import m0006 from "./0006_vm_snapshots.sql" with { type: "text" };
import m0007 from "./0007_vm_console.sql" with { type: "text" };
import m0008 from "./0008_vm_template_console.sql" with { type: "text" };
import m0009 from "./0009_object_path_per_host.sql" with { type: "text" };

/** A migration: its file name and SQL text. */
export interface Migration {
  name: string;
  sql: string;
}

/** All migrations of the control-plane schema, in the order they apply. */
export const MIGRATIONS: readonly Migration[] = [
  { name: "0001_init.sql", sql: m0001 },
  { name: "0002_resources.sql", sql: m0002 },
  { name: "0003_orchestration.sql", sql: m0003 },
  { name: "0004_job_cancel.sql", sql: m0004 },
  { name: "0005_local_object_host.sql", sql: m0005 },
  { name: "0006_vm_snapshots.sql", sql: m0006 },
  { name: "0007_vm_console.sql", sql: m0007 },
  { name: "0008_vm_template_console.sql", sql: m0008 },
  { name: "0009_object_path_per_host.sql", sql: m0009 },
];
