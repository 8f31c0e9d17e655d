-- People already known (issue 10; decision record 0026): intake's merges as the follow-up service
-- knows them (from intake.cases_merged / merge_undone: ids only). A registration merged into another
-- one of the same return is a duplicate: its follow-up is closed (closure reason MERGED) and leaves
-- the work lists and the statistics; ``merged_into`` names the case it was merged into (also for a
-- registration of an earlier return, whose follow-up goes on). An undo delivered before its merge
-- leaves a tombstone (undone), so the late merge never closes it again.
create table {schema}.case_merges (
    merge_id uuid primary key,
    survivor_case_id uuid not null,
    merged_case_id uuid not null,
    undone boolean not null default false,
    updated_at timestamptz not null default now()
);
create index case_merges_merged on {schema}.case_merges (merged_case_id) where not undone;

alter table {schema}.cases add column merged_into uuid;
