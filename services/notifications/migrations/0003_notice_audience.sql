-- A notice meant for some of an organisation's people only (escalations: its supervisors) names the
-- scope a token must hold to see it (referrals:supervise), on top of any sensitive-category scope.
alter table {schema}.notifications add column audience text;
