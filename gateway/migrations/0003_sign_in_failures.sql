-- Failed sign-ins are counted per (username, source), not per account: anyone who knows a username
-- could otherwise lock its owner out by failing five times. Both keys are keyed pseudonyms (HMAC
-- with the gateway's login secret): neither what was typed as a username (sometimes a password)
-- nor the caller's address is stored. Unknown usernames are counted exactly like known ones, so the
-- answers cannot tell them apart. See gateway/lockout.py for the rule.
create table {schema}.sign_in_failures (
    account text not null,
    source text not null,
    failures integer not null,
    last_failed_at timestamptz not null,
    locked_until timestamptz,
    primary key (account, source)
);
create index on {schema}.sign_in_failures (last_failed_at);

alter table {schema}.people drop column failed_attempts, drop column locked_until;
