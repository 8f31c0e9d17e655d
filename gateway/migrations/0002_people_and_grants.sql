-- People who sign in (case workers, supervisors, organisation admins, platform stewards).
-- Passwords are stored as argon2 hashes only. Roles are checked against contracts.scopes.ROLE_SCOPES
-- by the admin CLI; an unknown role grants nothing.
create table {schema}.people (
    id uuid primary key,
    org_id text not null references {schema}.organisations (id),
    username text not null unique check (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    display_name text not null,
    role text not null,
    password_hash text not null,
    status text not null default 'ACTIVE' check (status in ('ACTIVE', 'DISABLED')),
    failed_attempts integer not null default 0,
    locked_until timestamptz,
    created_at timestamptz not null default now()
);
create index on {schema}.people (org_id);

-- Clients: public clients (browser and mobile apps, PKCE, no secret) and exact redirect URIs.
-- A shared client (the platform's own web app) serves people of every organisation.
alter table {schema}.oauth_clients
    alter column secret_hash drop not null,
    add column redirect_uris text[] not null default '{}',
    add column grant_types text[] not null default '{client_credentials}',
    add column token_endpoint_auth_method text not null default 'client_secret_basic'
        check (token_endpoint_auth_method in ('client_secret_basic', 'client_secret_post', 'none')),
    add column shared boolean not null default false;

-- Authorization codes: stored hashed, short-lived, used once; kept after use until they expire so a
-- replayed code can be recognised and the tokens issued from it revoked.
create table {schema}.authorization_codes (
    code_hash text primary key,
    client_id text not null references {schema}.oauth_clients (client_id),
    person_id uuid not null references {schema}.people (id),
    redirect_uri text not null,
    scope text not null,
    code_challenge text not null,
    code_challenge_method text not null check (code_challenge_method = 'S256'),
    nonce text,
    auth_time timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    grant_id uuid
);
create index on {schema}.authorization_codes (client_id, nonce) where nonce is not null;

-- One sign-in of a person through a client: the "family" of its refresh and access tokens.
create table {schema}.person_grants (
    id uuid primary key,
    client_id text not null references {schema}.oauth_clients (client_id),
    person_id uuid not null references {schema}.people (id),
    scope text not null,
    auth_time timestamptz not null,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    revoked_reason text
);
create index on {schema}.person_grants (client_id) where revoked_at is null;
create index on {schema}.person_grants (person_id) where revoked_at is null;

-- Refresh tokens, stored hashed. Each is used once (rotated_at); presenting a rotated one again
-- revokes its whole grant (replay detection).
create table {schema}.refresh_tokens (
    token_hash text primary key,
    grant_id uuid not null references {schema}.person_grants (id),
    issued_at timestamptz not null default now(),
    expires_at timestamptz not null,
    rotated_at timestamptz
);
create index on {schema}.refresh_tokens (grant_id);

-- Access tokens issued to people, so revoking a grant can revoke its live access tokens too.
create table {schema}.grant_access_tokens (
    jti text primary key,
    grant_id uuid not null references {schema}.person_grants (id),
    expires_at timestamptz not null
);
create index on {schema}.grant_access_tokens (grant_id);

-- Revocations to publish to the REVOKED_TOKENS key-value bucket (kernel/denylist.py): an outbox,
-- so a revocation made while NATS is unreachable still reaches every process later.
create table {schema}.revocations (
    key text primary key,
    value bytea not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    published_at timestamptz
);
create index on {schema}.revocations (created_at) where published_at is null;

-- Server-side secrets generated at first start (e.g. the key that signs login forms).
create table {schema}.secrets (
    name text primary key,
    value text not null,
    created_at timestamptz not null default now()
);
