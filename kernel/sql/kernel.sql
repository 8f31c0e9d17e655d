-- Tables every service schema carries: outbox, inbox, idempotency keys.
-- {schema} is replaced by the owning service's schema name.
create table if not exists {schema}.outbox (
    id uuid primary key,
    subject text not null,
    envelope jsonb not null,
    headers jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    published_at timestamptz
);
create index if not exists outbox_unpublished on {schema}.outbox (created_at) where published_at is null;

create table if not exists {schema}.inbox (
    consumer text not null,
    event_id text not null,
    processed_at timestamptz not null default now(),
    primary key (consumer, event_id)
);

create table if not exists {schema}.idempotency_keys (
    org_id text not null,
    operation text not null,
    key text not null,
    request_hash text not null,
    response jsonb,
    created_at timestamptz not null default now(),
    primary key (org_id, operation, key)
);
