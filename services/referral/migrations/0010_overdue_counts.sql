-- overdueCounts (worklists.overdue_counts) for one organisation: its open referrals only, by side.
-- Without these, the count read every referral the organisation ever made or received (closed ones
-- too) and recheck them all on the heap; with them, each arm (pending past its deadline; accepted
-- with no outcome) is an index range of the organisation's open referrals in one state, read from
-- the index alone (the service's expected duration comes from the small services table).
create index referrals_open_incoming on {schema}.referrals (to_org_id, status, due_at)
    include (accepted_at, outcome_code, service_id)
    where status in ('PENDING', 'ACCEPTED');
create index referrals_open_outgoing on {schema}.referrals (from_org_id, status, due_at)
    include (accepted_at, outcome_code, service_id, service_category)
    where status in ('PENDING', 'ACCEPTED');
