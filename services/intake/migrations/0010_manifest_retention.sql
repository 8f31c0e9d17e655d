-- People a manifest listed who were never checked in (no-shows, or a group never closed): their
-- identity is erased once the group's arrival date is SEGIN_MANIFEST_RETENTION_DAYS (default 90)
-- behind. The row stays with its status, sex and age at arrival, so the group's totals do not change;
-- names, phones, document number, place, household, date of birth and the row's fingerprint go.
-- People checked in keep their row: it points at their case, which has its own rules.
alter table {schema}.expected_people
    alter column given_name drop not null,
    alter column family_name drop not null,
    add column erased_at timestamptz;
