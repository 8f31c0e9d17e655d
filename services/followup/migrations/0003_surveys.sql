-- The Reintegration Sustainability Survey, administered: one row per administration, with the
-- answers as given (indicator code -> option code, or DECLINED), the four scores and their bands as
-- computed when it was recorded, and the instrument id, version and digest they were computed with.
-- Scores are stored, never recomputed on read: a corrected instrument (a new version) changes no
-- past score. Answers are personal data (the psychosocial ones health data): they stay here, never
-- in an event, a log or an audit record.
create table {schema}.surveys (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    instrument_id text not null,
    instrument_version integer not null,
    instrument_digest text not null,
    taken_on date not null,
    answers jsonb not null,
    economic numeric(3, 2),
    social numeric(3, 2),
    psychosocial numeric(3, 2),
    composite numeric(3, 2),
    economic_band text,
    social_band text,
    psychosocial_band text,
    composite_band text,
    recorded_by_org_id text not null,
    recorded_at timestamptz not null default now()
);
create index surveys_case on {schema}.surveys (case_id, taken_on, recorded_at);

-- Statistics count plans saved within SEGIN_PLAN_DUE_DAYS of arrival: that is the first save, which
-- plan_saved_at (the latest) forgets. Cases saved before this migration count from their latest save.
alter table {schema}.cases add column first_plan_saved_at timestamptz;
update {schema}.cases set first_plan_saved_at = plan_saved_at where has_plan;
