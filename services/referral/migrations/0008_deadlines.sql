-- Deadlines that escalate (issue 8): the scan looks only at referrals still waiting for each mark.
-- Partial indexes hold exactly the rows that may still fire, so a scan over 100,000 open referrals
-- reads the few that are due, not the caseload; a row leaves an index once its mark is set.

-- Pending, not yet reminded: due when due_at <= now.
create index referrals_awaiting_reminder on {schema}.referrals (due_at)
    where status = 'PENDING' and reminded_at is null;
-- Pending, not yet escalated: due when due_at <= now - grace(priority), one range per priority.
create index referrals_awaiting_escalation on {schema}.referrals (priority, due_at)
    where status = 'PENDING' and escalated_at is null;
-- Accepted, no outcome, not yet flagged: due when accepted_at + the service's expected duration <= now,
-- so one range per service (services differ in duration).
create index referrals_awaiting_outcome on {schema}.referrals (service_id, accepted_at)
    where status = 'ACCEPTED' and overdue_flagged_at is null and outcome_code is null;
