-- Referrals people make and the work lists they follow (issue 8, items 4 and 6).
-- A case worker's note is bounded in the database too (the request model bounds it first).
alter table {schema}.referrals add constraint referrals_note_length check (char_length(note) <= 2000);
-- Work lists filter an organisation's incoming referrals by status (newest first, keyset paging).
create index referrals_incoming_status on {schema}.referrals (to_org_id, status, created_at desc, id desc);
-- Overdue scans: pending referrals by deadline, accepted ones by when they were accepted.
create index referrals_pending_due on {schema}.referrals (due_at) where status = 'PENDING';
create index referrals_accepted_since on {schema}.referrals (accepted_at) where status = 'ACCEPTED';
