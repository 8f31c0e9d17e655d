-- Routing as data (issue 8, items 2 and 3): what a rule decided about a need, kept on the referral so
-- that re-routing and hand assignment act as the rule said even after a new rules version; who
-- assigned an unmet need by hand; the unassigned list of an organisation and of the coordinating body.
alter table {schema}.referrals
    add column need_region text,             -- the region the need is served in; null: national services only
    add column basis_without_consent text,   -- the rule's basis when no consent covers the recipient
    add column due_in interval,              -- the rule's deadline, restarted when the need is (re)assigned
    add column assigned_by text,             -- the person (token subject) who assigned an unmet need
    add column assigned_by_org text,
    add column assigned_at timestamptz;
create index referrals_unassigned_owner on {schema}.referrals (case_owner_org_id, created_at desc, id desc)
    where status = 'UNASSIGNED';
create index referrals_unassigned on {schema}.referrals (created_at desc, id desc) where status = 'UNASSIGNED';
-- Re-routing walks the chain of referrals for one need.
create index referrals_rerouted_from on {schema}.referrals (rerouted_from) where rerouted_from is not null;
-- Routing reads the active services of a few categories covering a few regions.
create index services_regions on {schema}.services using gin (regions) where status = 'active';
