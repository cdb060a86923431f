"""Running the CRM unattended: the scheduler (jobs on their schedules, each
tick once), the outbox worker (leases, retries, dead letters) and the staff's
notifications. See docs/operations.md."""
