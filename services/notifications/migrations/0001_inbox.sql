-- An organisation's in-app notifications. Titles never contain personal data:
-- they name the kind of work and point at the referral and case by identifier.
create table {schema}.notifications (
    id uuid primary key,
    org_id text not null,
    kind text not null,
    priority text not null,
    title_fr text not null,
    title_en text not null,
    referral_id uuid,
    case_id uuid,
    source_event_id text not null,
    created_at timestamptz not null default now(),
    read_at timestamptz,
    unique (source_event_id, org_id, kind)
);
create index notifications_org on {schema}.notifications (org_id, created_at desc, id desc);
