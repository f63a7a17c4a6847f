-- A local pool is a directory on each host it is attached to, so a file in it exists on one
-- host only: the host it was created on or registered for. Placement and disk creation use
-- this to keep a VM and its files together. NULL for objects of shared pools (nfs) and for
-- objects whose host is unknown (registered before this column existed, or declared as
-- present on every host of the pool); those do not constrain placement.
-- No cascade: a host that still holds local objects cannot be deleted (the API says which).
ALTER TABLE storage_objects ADD COLUMN host_id uuid REFERENCES hosts (id);
CREATE INDEX storage_objects_host ON storage_objects (host_id) WHERE host_id IS NOT NULL;
