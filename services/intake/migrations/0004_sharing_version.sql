-- Each case's sharing version: raised by every sharing change (consent recorded or withdrawn,
-- another legal basis recorded), carried in sharing_changed (and arrival_registered: 1), so the
-- services keeping a copy of the coverage apply a change only if it is newer (decision record 0020).
-- Cases registered before this migration: one per basis recorded and one per withdrawal, as if
-- versions had always been kept (consumers hold 0 for them, so their next change applies).
alter table {schema}.cases add column sharing_version integer not null default 1;
update {schema}.cases c set sharing_version = greatest(1, (
    select count(*) + count(s.withdrawn_at) from {schema}.consents s where s.case_id = c.id));
