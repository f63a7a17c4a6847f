-- The control plane's resources: hosts, VMs with their disks and NICs, networks and IPAM,
-- storage pools and objects, boot sources, instance types, VM templates, jobs and the audit log.
--
-- Conventions: enum values are the API's wire values; every resource row carries `version`
-- (bumped on each UPDATE, served as the ETag) and `created_at`/`updated_at` with millisecond
-- precision (so a keyset cursor built from a JS Date matches the stored value exactly).
-- CHECK constraints are named <table>_<field>_check so a violation can name the field.

-- Bumps `version` on every UPDATE so conditional updates (If-Match) and ETags need no
-- cooperation from the code doing the update (issue 6's jobs included).
CREATE OR REPLACE FUNCTION bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.version = OLD.version + 1;
  RETURN NEW;
END;
$$;

CREATE TYPE host_status AS ENUM
  ('unknown', 'down', 'installing', 'installation_failed', 'initializing', 'up', 'maintenance');
CREATE TYPE vm_status AS ENUM
  ('unknown', 'created', 'pending', 'running', 'paused', 'shutdown', 'migrating');
CREATE TYPE hypervisor AS ENUM ('cloud_hv');
CREATE TYPE boot_mode AS ENUM ('kernel', 'firmware');
CREATE TYPE network_type AS ENUM ('bridge', 'macvtap', 'vlan');
CREATE TYPE network_mode AS ENUM ('static', 'dhcp', 'none');
CREATE TYPE network_status AS ENUM ('active', 'inactive');
CREATE TYPE attachment_status AS ENUM ('pending', 'ready', 'failed');
CREATE TYPE storage_pool_type AS ENUM ('local', 'nfs');
CREATE TYPE storage_pool_status AS ENUM ('active', 'inactive', 'error');
CREATE TYPE storage_object_type AS ENUM
  ('disk', 'kernel', 'initrd', 'firmware', 'iso', 'image', 'snapshot');
CREATE TYPE storage_object_status AS ENUM ('creating', 'ready', 'failed');
CREATE TYPE disk_format AS ENUM ('raw', 'qcow2');
CREATE TYPE job_status AS ENUM ('pending', 'running', 'succeeded', 'failed', 'cancelled');

-- Hypervisor hosts running qarax-node. Capacity and versions are filled by host init (issue 6).
CREATE TABLE hosts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  address text NOT NULL,
  port integer NOT NULL CONSTRAINT hosts_port_check CHECK (port BETWEEN 1 AND 65535),
  status host_status NOT NULL DEFAULT 'unknown',
  status_reason text,
  labels jsonb NOT NULL DEFAULT '{}',
  reservation_class text,
  architecture text,
  total_cpus integer,
  total_memory_bytes bigint,
  available_memory_bytes bigint,
  load_average double precision,
  cloud_hypervisor_version text,
  kernel_version text,
  node_version text,
  last_seen_at timestamptz(3),
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  -- Several agents may share one address on different ports (tests, emulated fleets).
  CONSTRAINT hosts_address_port_key UNIQUE (address, port)
);
CREATE INDEX hosts_list ON hosts (created_at, id);

CREATE TABLE storage_pools (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  type storage_pool_type NOT NULL DEFAULT 'local',
  status storage_pool_status NOT NULL DEFAULT 'active',
  -- Directory of the pool on every host it is attached to (local) or its mount point (nfs).
  path text NOT NULL,
  config jsonb NOT NULL DEFAULT '{}',
  capacity_bytes bigint CONSTRAINT storage_pools_capacity_bytes_check CHECK (capacity_bytes > 0),
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX storage_pools_list ON storage_pools (created_at, id);

-- A pool made available on a host; `status` is set when the node applies it (issue 6).
CREATE TABLE host_storage_pools (
  storage_pool_id uuid NOT NULL REFERENCES storage_pools (id),
  host_id uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  status attachment_status NOT NULL DEFAULT 'pending',
  status_reason text,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (storage_pool_id, host_id)
);
CREATE INDEX host_storage_pools_host ON host_storage_pools (host_id);

-- Files in a pool: disks, kernels, images, ... `path` is relative to the pool's path.
CREATE TABLE storage_objects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  storage_pool_id uuid NOT NULL REFERENCES storage_pools (id),
  type storage_object_type NOT NULL,
  format disk_format,
  path text NOT NULL,
  size_bytes bigint CONSTRAINT storage_objects_size_bytes_check CHECK (size_bytes >= 0),
  parent_id uuid REFERENCES storage_objects (id),
  status storage_object_status NOT NULL DEFAULT 'ready',
  status_reason text,
  source_url text,
  sha256 text,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT storage_objects_pool_name_key UNIQUE (storage_pool_id, name),
  CONSTRAINT storage_objects_pool_path_key UNIQUE (storage_pool_id, path)
);
CREATE INDEX storage_objects_list ON storage_objects (created_at, id);
CREATE INDEX storage_objects_parent ON storage_objects (parent_id);

-- Kernel (+ initrd + params) or firmware to boot a VM with.
CREATE TABLE boot_sources (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  kernel_image_id uuid REFERENCES storage_objects (id),
  initrd_image_id uuid REFERENCES storage_objects (id),
  kernel_params text,
  firmware_image_id uuid REFERENCES storage_objects (id),
  boot_mode boot_mode NOT NULL GENERATED ALWAYS AS (
    CASE WHEN kernel_image_id IS NULL THEN 'firmware'::boot_mode ELSE 'kernel'::boot_mode END
  ) STORED,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT boot_sources_kernel_image_id_check
    CHECK ((kernel_image_id IS NULL) <> (firmware_image_id IS NULL))
);
CREATE INDEX boot_sources_list ON boot_sources (created_at, id);

-- Sizing presets.
CREATE TABLE instance_types (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  architecture text,
  boot_vcpus integer NOT NULL CONSTRAINT instance_types_boot_vcpus_check CHECK (boot_vcpus >= 1),
  max_vcpus integer,
  memory_size bigint NOT NULL CONSTRAINT instance_types_memory_size_check CHECK (memory_size > 0),
  memory_hotplug_size bigint
    CONSTRAINT instance_types_memory_hotplug_size_check CHECK (memory_hotplug_size >= 0),
  memory_shared boolean,
  memory_hugepages boolean,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT instance_types_max_vcpus_check CHECK (max_vcpus IS NULL OR max_vcpus >= boot_vcpus)
);
CREATE INDEX instance_types_list ON instance_types (created_at, id);

CREATE TABLE networks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  type network_type NOT NULL DEFAULT 'bridge',
  mode network_mode NOT NULL DEFAULT 'static',
  subnet cidr,
  gateway inet,
  dns inet[] NOT NULL DEFAULT '{}',
  vlan_id integer CONSTRAINT networks_vlan_id_check CHECK (vlan_id BETWEEN 1 AND 4094),
  mtu integer NOT NULL DEFAULT 1500 CONSTRAINT networks_mtu_check CHECK (mtu BETWEEN 68 AND 65535),
  nat boolean NOT NULL DEFAULT false,
  status network_status NOT NULL DEFAULT 'active',
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT networks_subnet_check CHECK (mode = 'none' OR subnet IS NOT NULL)
);
CREATE INDEX networks_list ON networks (created_at, id);

-- A network made available on a host through a bridge (created by the node, issue 6).
CREATE TABLE host_networks (
  network_id uuid NOT NULL REFERENCES networks (id),
  host_id uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  bridge_name text NOT NULL,
  parent_interface text,
  status attachment_status NOT NULL DEFAULT 'pending',
  status_reason text,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (network_id, host_id),
  CONSTRAINT host_networks_host_bridge_name_key UNIQUE (host_id, bridge_name)
);
CREATE INDEX host_networks_host ON host_networks (host_id);

-- Reusable VM fields; everything optional.
CREATE TABLE vm_templates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  hypervisor hypervisor,
  architecture text,
  boot_mode boot_mode,
  boot_source_id uuid REFERENCES boot_sources (id),
  boot_vcpus integer CONSTRAINT vm_templates_boot_vcpus_check CHECK (boot_vcpus >= 1),
  max_vcpus integer,
  memory_size bigint CONSTRAINT vm_templates_memory_size_check CHECK (memory_size > 0),
  memory_hotplug_size bigint
    CONSTRAINT vm_templates_memory_hotplug_size_check CHECK (memory_hotplug_size >= 0),
  memory_shared boolean,
  memory_hugepages boolean,
  cloud_init_user_data text,
  cloud_init_meta_data text,
  cloud_init_network_config text,
  placement jsonb,
  tags text[] NOT NULL DEFAULT '{}',
  config jsonb NOT NULL DEFAULT '{}',
  -- NICs every VM made from the template gets: [{network_id, mtu?}].
  nics jsonb NOT NULL DEFAULT '[]',
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT vm_templates_max_vcpus_check CHECK (max_vcpus IS NULL OR max_vcpus >= boot_vcpus)
);
CREATE INDEX vm_templates_list ON vm_templates (created_at, id);

CREATE TABLE vms (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text,
  tags text[] NOT NULL DEFAULT '{}',
  status vm_status NOT NULL DEFAULT 'created',
  status_reason text,
  -- Placement; a host with VMs cannot be deleted (no cascade).
  host_id uuid REFERENCES hosts (id),
  hypervisor hypervisor NOT NULL DEFAULT 'cloud_hv',
  architecture text,
  boot_mode boot_mode NOT NULL DEFAULT 'kernel',
  boot_source_id uuid REFERENCES boot_sources (id),
  -- Where the fields came from; informational, so deleting the preset keeps the VM.
  instance_type_id uuid REFERENCES instance_types (id) ON DELETE SET NULL,
  vm_template_id uuid REFERENCES vm_templates (id) ON DELETE SET NULL,
  boot_vcpus integer NOT NULL CONSTRAINT vms_boot_vcpus_check CHECK (boot_vcpus >= 1),
  max_vcpus integer NOT NULL,
  memory_size bigint NOT NULL CONSTRAINT vms_memory_size_check CHECK (memory_size > 0),
  memory_hotplug_size bigint
    CONSTRAINT vms_memory_hotplug_size_check CHECK (memory_hotplug_size >= 0),
  memory_shared boolean NOT NULL DEFAULT false,
  memory_hugepages boolean NOT NULL DEFAULT false,
  cloud_init_user_data text,
  cloud_init_meta_data text,
  cloud_init_network_config text,
  placement jsonb NOT NULL DEFAULT '{}',
  config jsonb NOT NULL DEFAULT '{}',
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT vms_max_vcpus_check CHECK (max_vcpus >= boot_vcpus)
);
CREATE INDEX vms_list ON vms (created_at, id);
CREATE INDEX vms_host ON vms (host_id);
CREATE INDEX vms_tags ON vms USING gin (tags);

CREATE TABLE vm_disks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  vm_id uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
  device_id text NOT NULL,
  -- An attached object cannot be deleted (no cascade).
  storage_object_id uuid NOT NULL REFERENCES storage_objects (id),
  boot_order integer CONSTRAINT vm_disks_boot_order_check CHECK (boot_order >= 0),
  read_only boolean NOT NULL DEFAULT false,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT vm_disks_vm_device_id_key UNIQUE (vm_id, device_id)
);
CREATE INDEX vm_disks_object ON vm_disks (storage_object_id);

CREATE TABLE network_interfaces (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  vm_id uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
  device_id text NOT NULL,
  -- A network with NICs cannot be deleted (no cascade).
  network_id uuid NOT NULL REFERENCES networks (id),
  mac_address macaddr NOT NULL,
  ip_address inet,
  mtu integer CONSTRAINT network_interfaces_mtu_check CHECK (mtu BETWEEN 68 AND 65535),
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT network_interfaces_vm_device_id_key UNIQUE (vm_id, device_id),
  CONSTRAINT network_interfaces_mac_address_key UNIQUE (mac_address)
);
CREATE INDEX network_interfaces_network ON network_interfaces (network_id);

-- IPAM: one row per address in use on a network; the unique key makes allocation race-free,
-- and the cascades release the address with its NIC or VM.
CREATE TABLE ip_allocations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  ip_address inet NOT NULL,
  vm_id uuid REFERENCES vms (id) ON DELETE CASCADE,
  nic_id uuid REFERENCES network_interfaces (id) ON DELETE CASCADE,
  allocated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT ip_allocations_network_ip_address_key UNIQUE (network_id, ip_address)
);
CREATE INDEX ip_allocations_nic ON ip_allocations (nic_id);

-- Durable jobs: what to do (type, resource, params), progress and outcome, and the lease of
-- the worker running it. Issue 6's workers claim pending jobs with FOR UPDATE SKIP LOCKED.
CREATE TABLE jobs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type text NOT NULL CONSTRAINT jobs_type_check CHECK (type ~ '^[a-z][a-z0-9_]{0,63}$'),
  status job_status NOT NULL DEFAULT 'pending',
  resource_type text NOT NULL,
  resource_id uuid,
  params jsonb NOT NULL DEFAULT '{}',
  progress smallint NOT NULL DEFAULT 0 CONSTRAINT jobs_progress_check CHECK (progress BETWEEN 0 AND 100),
  progress_message text,
  -- Plan checkpoint: steps done and what they hand to later steps, so a retry resumes.
  checkpoint jsonb NOT NULL DEFAULT '{}',
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 3 CONSTRAINT jobs_max_attempts_check CHECK (max_attempts >= 1),
  error jsonb,
  result jsonb,
  idempotency_key text CONSTRAINT jobs_idempotency_key_key UNIQUE,
  actor text NOT NULL,
  request_id text,
  lease_owner text,
  lease_expires_at timestamptz(3),
  run_after timestamptz(3) NOT NULL DEFAULT now(),
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  started_at timestamptz(3),
  finished_at timestamptz(3),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);
-- Claiming: the oldest runnable pending job first.
CREATE INDEX jobs_claim ON jobs (run_after, created_at) WHERE status = 'pending';
-- Recovery: running jobs whose lease expired.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'running';
-- At most one active job per resource, race-free.
CREATE UNIQUE INDEX jobs_one_active_per_resource ON jobs (resource_type, resource_id)
  WHERE status IN ('pending', 'running') AND resource_id IS NOT NULL;
CREATE INDEX jobs_list ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_resource ON jobs (resource_type, resource_id);

CREATE TABLE audit_logs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  resource_type text NOT NULL,
  resource_id uuid,
  request_id text,
  summary jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_logs_list ON audit_logs (created_at DESC, id DESC);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['hosts', 'storage_pools', 'host_storage_pools', 'storage_objects',
    'boot_sources', 'instance_types', 'networks', 'host_networks', 'vm_templates', 'vms',
    'vm_disks', 'network_interfaces', 'jobs']
  LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION set_updated_at()', t || '_updated_at', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION bump_version()', t || '_version', t);
  END LOOP;
END;
$$;
