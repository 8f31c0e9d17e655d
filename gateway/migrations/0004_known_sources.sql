-- Where each account has recently proved itself (a client's secret, a code or refresh token; a
-- person's password): the per-address budget of failures does not refuse it there, so a spray of
-- guesses from a shared address (an office behind NAT) cannot stop those who work from it. Both
-- keys are keyed pseudonyms (HMAC with the gateway's login secret): no client id, username or
-- address is stored. See gateway/known.py for the rule.
create table {schema}.known_sources (
    account text not null,
    source text not null,
    last_success_at timestamptz not null,
    primary key (account, source)
);
create index on {schema}.known_sources (last_success_at);
