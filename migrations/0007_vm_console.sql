-- Where a VM's serial console goes: 'log' (a file on the node, read with GET /vms/{id}/console)
-- or 'socket' (an interactive unix socket, attached with GET /vms/{id}/console/attach).
CREATE TYPE vm_console AS ENUM ('log', 'socket');
ALTER TABLE vms ADD COLUMN console vm_console NOT NULL DEFAULT 'log';
