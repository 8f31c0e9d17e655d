-- Projection of the follow-up service's hand-overs: which organisation manages each case's
-- follow-up (one row per case, the latest hand-over by version). Fed by followup.case_assigned
-- events; never written otherwise. The manager reads the case while a basis covers it for FOLLOW_UP.
create table {schema}.management_grants (
    case_id uuid primary key,
    org_id text not null,
    legal_basis text,
    version integer not null,
    updated_at timestamptz not null default now()
);
