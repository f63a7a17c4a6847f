-- A local pool is a directory on each host, so the same relative path can hold different files
-- on different hosts (an image downloaded separately on two hosts). A path is unique per host
-- for objects with a host, and per pool for objects without one (shared pools, files on every
-- host, or not yet placed). That a host's object does not share a path with an "every host"
-- object of the same pool is checked by the API (storage_objects.pathClash), which an index
-- cannot express.
ALTER TABLE storage_objects DROP CONSTRAINT storage_objects_pool_path_key;
CREATE UNIQUE INDEX storage_objects_pool_path_key ON storage_objects (storage_pool_id, path)
  WHERE host_id IS NULL;
CREATE UNIQUE INDEX storage_objects_pool_host_path_key
  ON storage_objects (storage_pool_id, host_id, path) WHERE host_id IS NOT NULL;
-- The API's clash check looks up a pool's objects by path whatever their host.
CREATE INDEX storage_objects_pool_path ON storage_objects (storage_pool_id, path);
