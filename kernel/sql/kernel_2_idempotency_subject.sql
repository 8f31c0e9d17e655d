-- Idempotency keys belong to the client or person that sent them, not to the whole organisation:
-- replaying another person's key with guessed contents must not tell whether they match.
alter table {schema}.idempotency_keys add column if not exists subject text not null default '';
alter table {schema}.idempotency_keys drop constraint if exists idempotency_keys_pkey;
alter table {schema}.idempotency_keys add primary key (org_id, subject, operation, key);
