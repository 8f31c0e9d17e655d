-- Corrections (issue 10; decision record 0025): the case's version whose routing facts this copy holds
-- (intake's ``cases.version``: 1 at registration, raised by each correction), so a late correction
-- never overwrites a newer one.
alter table {schema}.cases add column case_version integer not null default 1;
