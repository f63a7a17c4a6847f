-- Orchestration (issue 6): the event log behind `GET /v1/events`, the leases that elect one
-- leader among control-plane processes, and the host facts a node reports on init.

-- Append-only log of what happened: VM and host status changes, job lifecycle and progress.
-- `id` is the SSE event id. Writers take a transaction-scoped lock before inserting (see
-- control/events/store.ts), so ids become visible in increasing order and a reader resuming
-- after id N never misses a smaller id committed later.
CREATE TABLE events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time timestamptz(3) NOT NULL DEFAULT now(),
  type text NOT NULL CONSTRAINT events_type_check CHECK (type ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$'),
  resource_type text NOT NULL,
  resource_id uuid,
  data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_resource ON events (resource_id, id);
CREATE INDEX events_time ON events (time);

-- Named leases: one row per role (e.g. `leader`), held by one process until `expires_at`.
-- Plain rows rather than advisory locks so they also work on the embedded database.
CREATE TABLE leases (
  name text PRIMARY KEY,
  owner text NOT NULL,
  expires_at timestamptz(3) NOT NULL,
  acquired_at timestamptz(3) NOT NULL DEFAULT now()
);

ALTER TABLE hosts
  ADD COLUMN cloud_hypervisor_emulated boolean,
  ADD COLUMN kvm_available boolean,
  ADD COLUMN disk_total_bytes bigint,
  ADD COLUMN disk_available_bytes bigint;

-- Finding a host's VMs by status (reconciliation, capacity ledger).
CREATE INDEX vms_host_status ON vms (host_id, status);
