/** Public surface of the Cloud Hypervisor client (`node/vmm`), for the rest of the node. */
export * from "./client.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./types.ts";
export * from "./version.ts";
