-- Cancelling jobs: `POST /v1/jobs/{id}/cancel` on a running job records the request here; the
-- worker running it stops before its next step, undoes what the job did and ends it
-- `cancelled`. A pending job that never ran is cancelled at once (both columns set too).
ALTER TABLE jobs
  ADD COLUMN cancel_requested_at timestamptz(3),
  ADD COLUMN cancel_requested_by text;
