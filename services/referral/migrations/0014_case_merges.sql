-- People already known (issue 10; decision records 0022 and 0025): intake's merges as the referral
-- service knows them (from intake.cases_merged / merge_undone: ids only), so that a case's referrals
-- include those made for the registrations merged into it, and a correction of the survivor never refers
-- the person again for a need a merged registration's referral covers. An undo delivered before its
-- merge leaves a tombstone (undone), so the late merge never brings it back.
create table {schema}.case_merges (
    merge_id uuid primary key,
    survivor_case_id uuid not null,
    merged_case_id uuid not null,
    undone boolean not null default false,
    updated_at timestamptz not null default now()
);
create index case_merges_survivor on {schema}.case_merges (survivor_case_id) where not undone;
