-- A need withdrawn and needed again (issue 10; decision record 0025, amended): a correction revokes the
-- rules' referral of a need it took away (status_reason NEED_WITHDRAWN) while no provider has accepted
-- it. If a later correction brings the need back, the rules refer it again. So a withdrawn referral no
-- longer counts as the need's one rule referral.
drop index {schema}.referrals_one_per_need;
create unique index referrals_one_per_need on {schema}.referrals (case_id, service_category)
    where origin = 'RULE' and status_reason is distinct from 'NEED_WITHDRAWN';
