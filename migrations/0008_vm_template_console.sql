-- A template may set where its VMs' serial console goes (NULL: the request or the default, 'log').
ALTER TABLE vm_templates ADD COLUMN console vm_console;
