-- What the follow-up service knows of each case, fed by intake's events (it never reads intake's
-- tables): the owner, the arrival date and region, and who the case may be shared with for the
-- purpose FOLLOW_UP (as the latest SharingChanged said); then what follow-up itself decides: who
-- manages the case, its state, and a version every change raises (optimistic concurrency).
create table {schema}.cases (
    case_id uuid primary key,
    owner_org_id text not null,
    manager_org_id text not null,
    arrival_date date not null,
    destination_region text not null,
    followup_recipients jsonb not null default '[]',  -- [SharingRecipient] for the purpose FOLLOW_UP
    status text not null default 'OPEN',
    closure_reason text,
    version integer not null default 0,
    has_plan boolean not null default false,
    plan_saved_at timestamptz,
    plan_saved_by_org_id text,
    managed_since timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- plansMissing: an organisation's open cases without a plan, newest hand-over first.
create index cases_plans_missing on {schema}.cases (manager_org_id, managed_since desc, case_id desc)
    where status = 'OPEN' and not has_plan;

-- Every hand-over of a case's follow-up, the first (the owner, at registration) included.
create table {schema}.assignments (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    from_org_id text,
    to_org_id text not null,
    reason_code text not null,
    legal_basis text,
    assigned_by_org_id text not null,
    assigned_at timestamptz not null default now()
);
create index assignments_case on {schema}.assignments (case_id, assigned_at);

-- The reintegration plan: goals per dimension, each with its actions. Descriptions are personal
-- data: they stay here, never in an event, a log or an audit record.
create table {schema}.plan_goals (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    position integer not null,
    dimension text not null,
    description text not null
);
create index plan_goals_case on {schema}.plan_goals (case_id, position);

create table {schema}.plan_actions (
    id uuid primary key,
    goal_id uuid not null references {schema}.plan_goals (id) on delete cascade,
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    position integer not null,
    description text not null,
    referral_id text,
    target_date date not null,
    status text not null,
    updated_at timestamptz not null default now()
);
create index plan_actions_case on {schema}.plan_actions (case_id);
