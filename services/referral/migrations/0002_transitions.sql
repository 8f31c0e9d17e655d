-- The directory knows each provider's organisation type, so consent given to a type of
-- organisation (e.g. all UN agencies) can be matched to a referral's recipient.
alter table {schema}.directory_services add column org_type text;

-- Why a referral left the open states (rejection reason, consent withdrawn, …): a code, not prose.
alter table {schema}.referrals add column status_reason text;
