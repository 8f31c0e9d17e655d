-- Family links between cases (issue 10, item 3; decision record 0023). Each link is stored once,
-- read from both sides: ``relation`` is what case_id's person is to linked_case_id's, the other side
-- sees its inverse. One link per pair of cases, whichever way round it was made.
create table {schema}.case_links (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (id) on delete cascade,
    linked_case_id uuid not null references {schema}.cases (id) on delete cascade,
    relation text not null,
    travelling_together boolean not null,
    created_by text not null,
    created_by_org text not null,
    created_at timestamptz not null default now(),
    check (case_id <> linked_case_id)
);
create unique index case_links_pair on {schema}.case_links
    (least(case_id, linked_case_id), greatest(case_id, linked_case_id));
create index case_links_linked on {schema}.case_links (linked_case_id);
create index case_links_case on {schema}.case_links (case_id);
