-- The audit trail: one hash-chained, append-only log per service schema (docs/decisions/0009).
-- {schema} is replaced by the owning service's schema name. Written only by kernel.audit.record.
-- Identifiers and category codes only: never a name, a narrative or any other personal data.
create table if not exists {schema}.audit_log (
    seq bigint generated always as identity primary key,
    at timestamptz not null,
    actor text not null,                               -- the token's subject (client or staff member)
    org_id text not null,
    client_id text not null,
    operation text not null,                           -- e.g. 'case.read', 'referral.accept'
    case_ids uuid[] not null default '{}',
    field_categories text[] not null default '{}',     -- e.g. 'identity', 'health'
    purpose text not null,
    legal_basis text,
    outcome text not null check (outcome in ('allowed', 'denied', 'restricted')),
    trace_id text,
    prev_hash text not null,                           -- the previous entry's hash (64 zeros for the first)
    hash text not null                                 -- sha256 over every other column, see kernel/audit.py
);
create index if not exists audit_log_case_ids on {schema}.audit_log using gin (case_ids);
create index if not exists audit_log_org_at on {schema}.audit_log (org_id, at);
create index if not exists audit_log_actor_at on {schema}.audit_log (actor, at);

-- History cannot be rewritten through SQL, even by a bug in our code. The table's owner can still
-- disable this trigger (and a superuser can set session_replication_role = replica): that is what
-- `segin audit verify` and the recorded chain head are for.
create or replace function {schema}.audit_log_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % is not allowed', tg_op;
end
$$;
drop trigger if exists audit_log_append_only on {schema}.audit_log;
create trigger audit_log_append_only
    before update or delete or truncate on {schema}.audit_log
    for each statement execute function {schema}.audit_log_append_only();
