-- VM snapshots: Cloud Hypervisor's snapshot of a running or paused VM (its config, device
-- state and memory), written by the VM's node into a directory of a storage pool. The
-- directory is a storage object of type `snapshot` (its `host_id` says which host holds the
-- files of a local pool); a restore must run on that host. Names are unique per VM.
CREATE TYPE snapshot_status AS ENUM ('creating', 'ready', 'failed');

CREATE TABLE vm_snapshots (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  vm_id uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
  name text NOT NULL,
  status snapshot_status NOT NULL DEFAULT 'creating',
  status_reason text,
  -- The host whose node wrote the files (kept when the host goes: the record says where they were).
  host_id uuid REFERENCES hosts (id) ON DELETE SET NULL,
  -- The directory; deleting the object deletes the snapshot record.
  storage_object_id uuid NOT NULL REFERENCES storage_objects (id) ON DELETE CASCADE,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT vm_snapshots_vm_id_name_key UNIQUE (vm_id, name)
);
CREATE INDEX vm_snapshots_list ON vm_snapshots (vm_id, created_at, id);
CREATE INDEX vm_snapshots_object ON vm_snapshots (storage_object_id);

CREATE TRIGGER vm_snapshots_updated_at BEFORE UPDATE ON vm_snapshots
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER vm_snapshots_version BEFORE UPDATE ON vm_snapshots
  FOR EACH ROW EXECUTE FUNCTION bump_version();
