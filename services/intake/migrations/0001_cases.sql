create table {schema}.cases (
    id uuid primary key,
    owner_org_id text not null,
    given_name text not null,
    family_name text not null,
    sex text not null,
    date_of_birth date,
    estimated_age integer,
    country_returned_from text not null,
    arrival_point text not null,
    arrival_date date not null,
    destination_region text not null,
    registered_by text not null,
    created_at timestamptz not null default now()
);
create index cases_owner on {schema}.cases (owner_org_id, created_at desc);

-- One row per vulnerability flag: who assessed it and when (severity is optional for now).
create table {schema}.vulnerability_flags (
    case_id uuid not null references {schema}.cases (id) on delete cascade,
    code text not null,
    severity text,
    assessed_by text not null,
    assessed_at timestamptz not null default now(),
    primary key (case_id, code)
);

create table {schema}.consents (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (id) on delete cascade,
    given boolean not null,
    recipient_org_ids text[] not null default '{}',
    language text not null,
    recorded_by text not null,
    recorded_at timestamptz not null default now(),
    withdrawn_at timestamptz
);
create index consents_case on {schema}.consents (case_id);
