-- One live referral per need (issue 10; decision record 0025, amended). A correction revokes the rules'
-- referral of a need it took away, or of one whose provider no longer fits the corrected case (status_reason
-- NEED_WITHDRAWN), while no provider has accepted it, and the rules refer the need again when it is needed.
-- Before, the index held one rule referral per need for ever, revoked or not. Now it holds what must never
-- be doubled: the live referral (waiting, accepted or unmet) the rules or a re-routing made for a need. A
-- redelivered arrival still finds it; people's own referrals stay outside, as before.
drop index {schema}.referrals_one_per_need;
create unique index referrals_one_per_need on {schema}.referrals (case_id, service_category)
    where origin <> 'MANUAL' and status in ('PENDING', 'AWAITING_CONSENT', 'ACCEPTED', 'UNASSIGNED');
