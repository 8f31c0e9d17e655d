-- The sharing version of the coverage held in followup_recipients (intake raises it with every
-- sharing change): a sharing_changed is applied only if its version is newer, so an event delivered
-- late (retried after a failure while the next one went through) never restores withdrawn consent.
-- 0: no versioned event applied yet (every case known before this migration); decision record 0020.
alter table {schema}.cases add column sharing_version integer not null default 0;
