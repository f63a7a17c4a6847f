/**
 * The node agent's Prometheus metrics: VMs by status and each booted VM's Cloud Hypervisor
 * device counters (`vm.counters`, read from the VMMs at scrape time), and the gRPC calls this
 * agent served by method and code with their latency (counted by the RPC middleware).
 */
import { logger } from "../../shared/log/logger.ts";
import { Registry } from "../../shared/metrics/registry.ts";
import { commit, VERSION } from "../../shared/version.ts";
import type { VmCounters } from "../vmm/types.ts";
import type { VmState } from "../vms/manager.ts";
import { VM_STATUSES } from "../vms/status.ts";

/** What the metrics read from the VM manager (an interface so tests can stand in for it). */
export interface VmSource {
  list(): VmState[];
  counters(id: string): Promise<VmCounters>;
}

/** The metric families of one agent. */
export class NodeMetrics {
  readonly registry: Registry;
  readonly #grpcCalls;
  readonly #grpcDuration;

  constructor(vms?: VmSource) {
    const log = logger().child({ component: "metrics" });
    const r = this.registry = new Registry({
      onCollectError: (collector, err) => log.warn("metrics collection failed", { collector, err }),
    });
    r.gauge("qarax_node_build_info", "Version and commit of this agent (always 1).", [
      "version",
      "commit",
    ]).set({ version: VERSION, commit: commit() }, 1);
    this.#grpcCalls = r.counter(
      "qarax_node_grpc_requests_total",
      "gRPC calls served, by full method name and status code.",
      ["method", "code"],
    );
    this.#grpcDuration = r.histogram(
      "qarax_node_grpc_request_duration_seconds",
      "Time to serve a gRPC call (the stream's lifetime for streaming calls).",
      ["method"],
    );
    const count = r.gauge("qarax_node_vms", "VMs on this node by status.", ["status"]);
    const chCounters = r.counter(
      "qarax_node_vm_device_counter_total",
      "Cloud Hypervisor device counters (vm.counters) of each booted VM.",
      ["vm_id", "device", "counter"],
    );
    if (!vms) return;
    r.collect("vms", [count, chCounters], async () => {
      const list = vms.list();
      for (const status of VM_STATUSES) count.set({ status }, 0);
      for (const vm of list) count.inc({ status: vm.status });
      // Only a booted VM has counters; one VMM that does not answer only loses its own.
      const booted = list.filter((vm) => vm.status === "running" || vm.status === "paused");
      await Promise.all(booted.map(async (vm) => {
        const vmId = vm.config.vmId!;
        try {
          for (const [device, values] of Object.entries(await vms.counters(vmId))) {
            for (const [counter, value] of Object.entries(values)) {
              chCounters.set({ vm_id: vmId, device, counter }, value);
            }
          }
        } catch (err) {
          log.debug("vm.counters failed; VM left out of this scrape", { vm_id: vmId, err });
        }
      }));
    });
  }

  /** Counts one served gRPC call; `code` is the status name (`OK`, `NOT_FOUND`...). */
  observeCall(method: string, code: string, seconds: number): void {
    this.#grpcCalls.inc({ method, code });
    this.#grpcDuration.observe({ method }, seconds);
  }

  /** The scrape answer body. */
  render(): Promise<string> {
    return this.registry.render();
  }
}
