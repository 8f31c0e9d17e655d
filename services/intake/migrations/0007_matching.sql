-- People already known (decision record 0022).
-- Blocking keys of every case, written in the same transaction as the case: finding the
-- candidates for a person reads a few hundred rows by key, never the whole table.
create table {schema}.match_keys (
    key text not null,
    case_id uuid not null references {schema}.cases (id) on delete cascade,
    primary key (key, case_id)
);
create index match_keys_case on {schema}.match_keys (case_id);

-- A merged case stays (nothing is deleted): it points at the case it was merged into, and every
-- read of its id answers the survivor. Undone, the pointer is cleared; the merge row stays.
alter table {schema}.cases add column merged_into uuid references {schema}.cases (id);
create index cases_merged_into on {schema}.cases (merged_into) where merged_into is not null;

create table {schema}.case_merges (
    id uuid primary key,
    survivor_id uuid not null references {schema}.cases (id),
    merged_id uuid not null references {schema}.cases (id),
    reason text not null,
    merged_by text not null,
    merged_by_org_id text not null,
    merged_at timestamptz not null default now(),
    undone_by text,
    undone_by_org_id text,
    undone_at timestamptz,
    check (survivor_id <> merged_id)
);
-- At most one merge in force per merged case.
create unique index case_merges_in_force on {schema}.case_merges (merged_id) where undone_at is null;

-- Possible duplicates the registering organisation could not be shown (the earlier case is held by
-- an organisation it may not read): for the platform steward. Ids, organisations, score and reason
-- codes only, never a name.
create table {schema}.possible_duplicates (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (id),
    other_case_id uuid not null references {schema}.cases (id),
    case_owner_org_id text not null,
    other_owner_org_id text not null,
    score numeric(4, 3) not null,
    reasons text[] not null,
    status text not null default 'OPEN',
    created_at timestamptz not null default now(),
    decided_by text,
    decided_at timestamptz,
    unique (case_id, other_case_id)
);
create index possible_duplicates_status on {schema}.possible_duplicates (status, created_at desc, id desc);
