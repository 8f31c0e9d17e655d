-- Reception of groups (issue 10): an expected-arrival group (a charter flight, a convoy), the people
-- its manifest(s) list, each upload's result (a re-sent file answers the same, duplicating nothing),
-- and the column mapping each sender's files use (docs/manifests.md, docs/decisions/0021).
create table {schema}.arrival_groups (
    id uuid primary key,
    owner_org_id text not null,
    kind text not null,
    reference text not null,
    arrival_date date not null,
    arrival_point text not null,
    country_returned_from text not null,
    status text not null default 'OPEN',
    closed_at timestamptz,
    created_by text not null,
    created_at timestamptz not null default now()
);
create index arrival_groups_owner on {schema}.arrival_groups (owner_org_id, created_at desc, id desc);

create table {schema}.expected_people (
    seq bigserial unique,  -- manifest order, for paging
    id uuid primary key,
    group_id uuid not null references {schema}.arrival_groups (id) on delete cascade,
    fingerprint text,  -- a manifest row's normalised content; null for someone added on arrival
    source_row integer,
    given_name text not null,
    family_name text not null,
    sex text,
    date_of_birth date,
    estimated_age integer,
    phone_numbers text[] not null default '{}',
    document_number text,
    place_of_origin text,
    household_ref text,
    relationship text,
    destination_region text,
    status text not null default 'EXPECTED',
    added_on_arrival boolean not null default false,
    case_id uuid references {schema}.cases (id),
    checked_in_at timestamptz,
    created_at timestamptz not null default now(),
    unique (group_id, fingerprint)
);
create index expected_people_group on {schema}.expected_people (group_id, seq);
create unique index expected_people_case on {schema}.expected_people (case_id) where case_id is not null;

create table {schema}.manifest_uploads (
    id uuid primary key,
    group_id uuid not null references {schema}.arrival_groups (id) on delete cascade,
    file_sha256 text not null,
    sender text not null,
    result jsonb not null,
    uploaded_by text not null,
    created_at timestamptz not null default now(),
    unique (group_id, file_sha256)
);

create table {schema}.manifest_mappings (
    owner_org_id text not null,
    sender text not null,  -- as the organisation names the sender, compared case- and accent-blind
    mapping jsonb not null,  -- [{"column": header, "field": ManifestField}]
    updated_by text not null,
    updated_at timestamptz not null default now(),
    primary key (owner_org_id, sender)
);
