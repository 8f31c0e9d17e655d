-- Organisations and their scope ceiling, set by the platform steward.
create table {schema}.organisations (
    id text primary key check (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name text not null,
    type text not null,
    status text not null default 'ACTIVE',
    scope_ceiling text[] not null default '{}',
    created_at timestamptz not null default now()
);

-- OAuth clients (an organisation's systems). Secrets are stored as argon2 hashes only.
create table {schema}.oauth_clients (
    client_id text primary key,
    org_id text not null references {schema}.organisations (id),
    name text not null,
    secret_hash text not null,
    scopes text[] not null default '{}',
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

-- Token signing keys, generated at first start; old keys stay published until retired.
create table {schema}.signing_keys (
    kid text primary key,
    private_jwk jsonb not null,
    created_at timestamptz not null default now(),
    retired_at timestamptz
);
