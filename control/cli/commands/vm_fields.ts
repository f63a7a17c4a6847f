/** The VM flags that VMs, instance types and templates share (sizing, boot, cloud-init, tags). */
import type { Field } from "../fields.ts";

/** Name, description and sizing. */
export const SIZING_FIELDS: Field[] = [
  { flag: "name", path: "name", type: "string", help: "new name", on: ["update"] },
  { flag: "description", path: "description", type: "string", help: "free text", nullable: true },
  { flag: "vcpus", path: "boot_vcpus", type: "int", help: "vCPUs at boot" },
  { flag: "max-vcpus", path: "max_vcpus", type: "int", help: "vCPU hotplug limit" },
  { flag: "memory", path: "memory_size", type: "size", help: "guest memory, e.g. 1GiB or 512MiB" },
  {
    flag: "memory-hotplug",
    path: "memory_hotplug_size",
    type: "size",
    help: "hot-pluggable memory",
  },
  { flag: "memory-shared", path: "memory_shared", type: "bool", help: "shared guest memory" },
  { flag: "hugepages", path: "memory_hugepages", type: "bool", help: "back memory with hugepages" },
  {
    flag: "architecture",
    path: "architecture",
    type: "string",
    value: "ARCH",
    help: "x86_64 | aarch64",
  },
];

/** What boots, tags, and cloud-init data. */
export const GUEST_FIELDS: Field[] = [
  {
    flag: "boot-source",
    path: "boot_source_id",
    type: { ref: "bootSource" },
    help: "kernel/initrd/firmware to boot",
    nullable: true,
  },
  {
    flag: "boot-mode",
    path: "boot_mode",
    type: "string",
    value: "MODE",
    help: "kernel | firmware",
  },
  {
    flag: "console",
    path: "console",
    type: "string",
    value: "MODE",
    help: "serial console: log (default; read with vm console) | socket (vm attach)",
  },
  {
    flag: "tag",
    path: "tags",
    type: "strings",
    value: "TAG",
    help: "tag",
  },
  {
    flag: "cloud-init-user-data",
    path: "cloud_init_user_data",
    type: "file",
    help: "cloud-init user data from FILE (- for stdin)",
  },
  {
    flag: "cloud-init-meta-data",
    path: "cloud_init_meta_data",
    type: "file",
    help: "cloud-init meta data from FILE",
  },
  {
    flag: "cloud-init-network-config",
    path: "cloud_init_network_config",
    type: "file",
    help: "cloud-init network config from FILE",
  },
];
