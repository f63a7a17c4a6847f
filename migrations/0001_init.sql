-- Shared building blocks for the schema.

-- Keeps updated_at current on every UPDATE of a table that installs it as a trigger.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;
