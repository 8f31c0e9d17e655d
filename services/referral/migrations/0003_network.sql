-- The national referral network (issue 8): the directory on Open Referral HSDS 3, referrals made
-- by rules (with the rule and rules version), by people, or by re-routing, unmet needs, deadlines.

-- Organisations as the directory knows them (id = the platform's organisation id, as in tokens).
create table {schema}.organizations (
    id text primary key,
    name text not null,
    org_type text not null,
    description text,
    email text,
    website text,
    updated_at timestamptz not null default now()
);

-- One row per service an organisation offers (HSDS `service`, with its service area, eligibility,
-- contact and `service_capacity` folded in: each service has at most one capacity unit here).
create table {schema}.services (
    id uuid primary key,
    organization_id text not null references {schema}.organizations (id),
    name_fr text not null,
    name_en text,
    description_fr text,
    description_en text,
    category text not null,
    regions text[] not null default '{}',          -- service area (region codes); empty: national
    status text not null default 'active' check (status in ('active', 'inactive')),
    minimum_age integer,
    maximum_age integer,
    sexes text[] not null default '{}',            -- eligible sexes; empty: any
    vulnerabilities text[] not null default '{}',  -- eligible only with one of these; empty: anyone
    hours jsonb not null default '[]',             -- HSDS schedule-like entries
    email text,
    phone text,
    url text,
    capacity_available integer check (capacity_available >= 0),
    capacity_maximum integer check (capacity_maximum >= 0),
    capacity_updated_at timestamptz,
    capacity_updated_by text,
    expected_duration interval,                    -- accepted with no outcome past this: flagged
    version integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    updated_by text
);
create index services_routing on {schema}.services (category) where status = 'active';
create index services_organization on {schema}.services (organization_id, id);

-- HSDS `location` (physical), several per service.
create table {schema}.service_locations (
    id uuid primary key,
    service_id uuid not null references {schema}.services (id) on delete cascade,
    position integer not null default 0,
    name text,
    address_1 text,
    city text,
    region text,
    latitude numeric(9, 6),
    longitude numeric(9, 6)
);
create index service_locations_service on {schema}.service_locations (service_id, position);

-- Carry the earlier directory over, then retire it.
insert into {schema}.organizations (id, name, org_type)
    select distinct on (org_id) org_id, name, coalesce(org_type, 'NGO') from {schema}.directory_services
    order by org_id;
insert into {schema}.services (id, organization_id, name_fr, category, regions, status)
    select id, org_id, category, category, regions, case when active then 'active' else 'inactive' end
    from {schema}.directory_services;
drop table {schema}.directory_services;

-- Referrals: which directory service, which rule of which rules version (automatic), or which
-- person (manual); a need no provider fits is a referral in state UNASSIGNED with no recipient yet.
alter table {schema}.referrals
    alter column to_org_id drop not null,
    add column service_id uuid,
    add column origin text not null default 'RULE' check (origin in ('RULE', 'MANUAL', 'REROUTE')),
    add column rule_id text,
    add column rules_version text,
    add column made_by text,             -- the person (token subject) who made a manual referral
    add column note text,                -- free text: personal data, never in events or logs
    add column unassigned_reason text,   -- NO_PROVIDER_IN_REGION | NO_CAPACITY | NOT_ELIGIBLE
    add column accepted_at timestamptz,
    add column outcome_code text,
    add column outcome_delivered boolean,
    add column outcome_date date,
    add column reminded_at timestamptz,
    add column escalated_at timestamptz,
    add column overdue_flagged_at timestamptz,
    add column rerouted_from uuid,
    add column rerouted_to uuid;
-- Rules make one referral per need of a case; people and re-routing may refer again later.
alter table {schema}.referrals drop constraint referrals_case_id_to_org_id_service_category_key;
create unique index referrals_one_per_need on {schema}.referrals (case_id, service_category) where origin = 'RULE';
create index referrals_outgoing on {schema}.referrals (from_org_id, created_at desc, id desc);
