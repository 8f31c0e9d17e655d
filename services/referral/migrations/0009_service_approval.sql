-- A service in a sensitive category (child protection, counter-trafficking, GBV, health) is put to
-- use only once the platform steward has approved it: until then routing, assigning, re-routing and
-- referring leave it out, and only its own organisation and the steward see it. Otherwise any
-- organisation with directory:write could list "child protection" in a region and receive the
-- region's unaccompanied children on vital interest (decision record 0016).
-- Services of other categories need no approval (always approved). Services already in the
-- directory when this rule arrived were loaded by the platform's seed and stay approved.
alter table {schema}.services
    add column approved boolean not null default true,
    add column approved_at timestamptz,
    add column approved_by text;
create index services_awaiting_approval on {schema}.services (created_at, id) where not approved;
