-- The sharing version of the coverage held in referral_recipients (intake raises it with every
-- sharing change): a sharing_changed is applied, and the case's referrals reassessed, only if its
-- version is newer, so an event delivered late neither sends a referral live on withdrawn consent
-- nor revokes one a newer consent covers. 0: no versioned event applied yet (every case known
-- before this migration); decision record 0020.
alter table {schema}.cases add column sharing_version integer not null default 0;
