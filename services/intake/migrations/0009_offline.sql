-- Offline capture (decision record 0024).
-- Each correction of a case's identity or screening: the version it made, which fields it changed
-- (names only, never values: "vulnerabilities.health" for a sensitive category), who made it. A
-- conflict tells an offline client which fields changed since the version its edit started from.
create table {schema}.case_changes (
    case_id uuid not null references {schema}.cases (id) on delete cascade,
    version integer not null,
    fields text[] not null,
    changed_by text not null,
    changed_at timestamptz not null default now(),
    primary key (case_id, version)
);

-- Every Kobo/ODK submission received, per organisation and submission id: ACCEPTED (the case it
-- registered), DUPLICATE (sent again after: how many times) or REJECTED (the problems, by field and
-- message, and the answers needed to fix it, until fixed or their retention ends). One row per
-- (organisation, submission id, status).
create table {schema}.offline_submissions (
    id uuid primary key,
    org_id text not null,
    submission_id text not null,
    source text not null,
    status text not null,
    case_id uuid,
    problems jsonb not null default '[]',
    answers jsonb,
    attempts integer not null default 1,
    received_by text not null,
    created_at timestamptz not null default now(),
    last_received_at timestamptz not null default now(),
    unique (org_id, submission_id, status)
);
create index offline_submissions_list on {schema}.offline_submissions (org_id, created_at desc, id desc);
create index offline_submissions_rejected on {schema}.offline_submissions (last_received_at)
    where answers is not null;
