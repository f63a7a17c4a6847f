-- A local pool is a directory on each host it is attached to, so a file in it exists on one
-- host only: the host it was created on or registered for. Placement and disk creation use
-- this to keep a VM and its files together. NULL for objects of shared pools (nfs) and for
-- objects whose host is unknown (registered before this column existed, or declared as
-- present on every host of the pool); those do not constrain placement.
-- No cascade: a host that still holds local objects cannot be deleted (the API says which).
ALTER TABLE storage_objects ADD COLUMN host_id uuid REFERENCES hosts (id);
CREATE INDEX storage_objects_host ON storage_objects (host_id) WHERE host_id IS NOT NULL;

-- Existing objects: a disk made by a finished disk_create job is on the host the job used; any
-- other object of a local pool attached to exactly one host is on that host. The rest stay
-- unknown (NULL) rather than guessed.
UPDATE storage_objects o SET host_id = h.id
FROM jobs j, storage_pools p, hosts h
WHERE j.type = 'disk_create' AND j.status = 'succeeded' AND j.resource_id = o.id
  AND p.id = o.storage_pool_id AND p.type = 'local'
  AND h.id::text = j.result ->> 'host_id';
UPDATE storage_objects o SET host_id = a.host_id
FROM host_storage_pools a, storage_pools p
WHERE o.host_id IS NULL AND p.id = o.storage_pool_id AND p.type = 'local'
  AND a.storage_pool_id = o.storage_pool_id
  AND (SELECT count(*) FROM host_storage_pools x WHERE x.storage_pool_id = o.storage_pool_id) = 1;
