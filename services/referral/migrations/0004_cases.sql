-- What the referral service knows of each case, fed by intake's events (it never reads intake's
-- tables): the routing facts (region, arrival point, sex, age, vulnerabilities) and who the case
-- may be shared with for referral, and on which basis, as the latest SharingChanged said.
create table {schema}.cases (
    case_id uuid primary key,
    owner_org_id text not null,
    arrival_point text not null,
    arrival_date date not null,
    destination_region text not null,
    is_child boolean not null,
    sex text not null,
    age_years integer,
    vulnerabilities text[] not null default '{}',
    referral_recipients jsonb not null default '[]',  -- [SharingRecipient] for the purpose REFERRAL
    updated_at timestamptz not null default now()
);
