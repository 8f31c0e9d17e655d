-- Families (issue 10, item 3; decision record 0023): intake's family links as the referral service
-- knows them (from intake.cases_linked / cases_unlinked: ids and the relation only), so that routing
-- can send a family to the provider already serving one of its members. An unlink delivered before
-- its link leaves a tombstone (removed), so the late link never brings it back.
create table {schema}.case_links (
    link_id uuid primary key,
    case_id uuid not null,
    linked_case_id uuid not null,
    relation text not null,
    travelling_together boolean not null,
    removed boolean not null default false,
    updated_at timestamptz not null default now()
);
create index case_links_case on {schema}.case_links (case_id) where not removed;
create index case_links_linked on {schema}.case_links (linked_case_id) where not removed;
-- Why routing chose a referral's provider (TIE_ORDER, FAMILY); null for referrals people make.
alter table {schema}.referrals add column provider_reason text;
