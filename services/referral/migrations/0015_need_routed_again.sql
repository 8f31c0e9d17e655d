-- A need withdrawn and needed again (issue 10; decision record 0025, amended): a correction revokes the
-- rules' referral of a need it took away, or of one whose provider no longer fits the corrected case
-- (status_reason NEED_WITHDRAWN), while no provider has accepted it. The rules then refer the need again
-- when it is needed. So neither a withdrawn referral nor one re-routed (its need lives on in the
-- re-routing, which may itself be withdrawn) counts as the need's one rule referral.
drop index {schema}.referrals_one_per_need;
create unique index referrals_one_per_need on {schema}.referrals (case_id, service_category)
    where origin = 'RULE' and status_reason is distinct from 'NEED_WITHDRAWN' and rerouted_to is null;
