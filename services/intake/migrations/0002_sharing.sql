-- Every basis for sharing a case is a row of consents: consent given or refused, or another legal
-- basis (vital interest, legal obligation, public interest), per purpose and recipient.
alter table {schema}.consents
    add column legal_basis text not null default 'CONSENT',
    add column purposes text[] not null default '{REFERRAL}',
    add column recipient_org_types text[] not null default '{}',
    add column given_by text not null default 'PERSON',
    add column guardian_name text,
    add column justification text,
    add column withdrawn_by text;

-- Projection of the referral service's referrals: which organisation holds an open referral
-- for which case, and on which legal basis. Fed by referral events; never written otherwise.
create table {schema}.access_grants (
    referral_id uuid primary key,
    case_id uuid not null,
    org_id text not null,
    legal_basis text,
    status text not null,
    updated_at timestamptz not null default now()
);
create index access_grants_case on {schema}.access_grants (case_id, org_id);
