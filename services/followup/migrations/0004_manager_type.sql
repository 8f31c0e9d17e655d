-- The managing organisation's type as the organisation registry gave it at hand-over, so that the
-- owner can tell whether consent given to a type of organisation still covers the manager (when no
-- basis does, the owner may take the case back: decision record 0017). Null for hand-overs made
-- before this column, and for the owner managing its own case.
alter table {schema}.cases add column manager_org_type text;
