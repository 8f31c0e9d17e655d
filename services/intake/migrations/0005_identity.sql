-- What tells one person from another when they come back: phone numbers (E.164) and place of
-- origin, and each case's version, raised by every change to its identity or screening, so an
-- edit made offline from an older version is reported as a conflict instead of overwriting.
alter table {schema}.cases
    add column phone_numbers text[] not null default '{}',
    add column place_of_origin text,
    add column version integer not null default 1;
