-- The shared directory: which organisation offers which service, and where.
-- An empty regions array means national coverage.
create table {schema}.directory_services (
    id uuid primary key,
    org_id text not null,
    name text not null,
    category text not null,
    regions text[] not null default '{}',
    active boolean not null default true,
    unique (org_id, category)
);
create index directory_category on {schema}.directory_services (category) where active;

-- One transition record per referral (Primero's model): PENDING → ACCEPTED | REJECTED → DONE,
-- REVOKED from any state; AWAITING_CONSENT when no legal basis covers sharing with the recipient.
create table {schema}.referrals (
    id uuid primary key,
    case_id uuid not null,
    case_owner_org_id text not null,
    from_org_id text not null,
    to_org_id text not null,
    service_category text not null,
    priority text not null,
    legal_basis text,
    status text not null,
    reason_code text not null,
    due_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (case_id, to_org_id, service_category)
);
create index referrals_incoming on {schema}.referrals (to_org_id, created_at desc, id desc);
create index referrals_case on {schema}.referrals (case_id);
