-- Follow-up contacts (issue 9, item 3) and their timers; work lists (item 6). Decision record 0018.
--
-- Each case follows one version of one schedule (services/followup/schedules/): the latest DEFAULT
-- when the case is created; the cases known before this migration follow DEFAULT version 1.
alter table {schema}.cases
    add column schedule_id text not null default 'DEFAULT',
    add column schedule_version integer not null default 1,
    -- The sensitive categories of the case's vulnerabilities (from arrival_registered): a contact's
    -- note is shown only to tokens holding each one's scope. Null: not known (a case registered
    -- before this migration), treated as every category until intake's event is delivered again.
    add column sensitive_categories text[],
    -- Where the case stands, kept with each contact logged and each scan (computed by
    -- schedule.standing, never typed in): the next contact to make, for the work lists ...
    add column next_contact_code text,
    add column next_contact_opens_on date,
    add column next_contact_due_on date,
    add column next_contact_overdue_after date,
    add column failed_in_a_row integer not null default 0,
    -- ... set when failed_in_a_row reaches the schedule's threshold (with its event), cleared when
    -- a contact reaches the person: the event fires once per crossing.
    add column unreachable_since timestamptz,
    add column last_attempt_on date,
    -- The first day a scan may have something to fire for this case (0001-01-01: look at once,
    -- as for every case known before this migration and every new case; 9999-12-31: never).
    add column next_check_on date not null default '0001-01-01',
    -- The plan-overdue notice, once per case.
    add column plan_overdue_flagged_at timestamptz;
alter table {schema}.cases alter column schedule_id drop default, alter column schedule_version drop default;

-- The contact log. Notes and next steps are personal data: they stay here, never in an event, a log
-- or an audit record.
create table {schema}.contacts (
    id uuid primary key,
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    contact_date date not null,
    mode text not null,
    reached boolean not null,
    next_step text,
    note text,
    logged_by_org_id text not null,
    logged_at timestamptz not null default now()
);
create index contacts_case on {schema}.contacts (case_id, contact_date desc, logged_at desc);

-- Durable, exactly-once timers: one row per (case, scheduled contact, DUE | OVERDUE) once it fired,
-- written in the transaction that writes its event (decision records 0015 and 0018).
create table {schema}.contact_marks (
    case_id uuid not null references {schema}.cases (case_id) on delete cascade,
    contact_code text not null,
    kind text not null,
    fired_at timestamptz not null default now(),
    primary key (case_id, contact_code, kind)
);

-- The scan: open cases with something that may fire by today (a range of one index).
create index cases_contact_check on {schema}.cases (next_check_on) where status = 'OPEN';
-- The plan-overdue scan: open cases without a plan nor its notice, by arrival date.
create index cases_plan_overdue on {schema}.cases (arrival_date)
    where status = 'OPEN' and not has_plan and plan_overdue_flagged_at is null;
-- Work lists of one organisation: its open cases by their next contact's due date; its unreachable ones.
create index cases_next_contact on {schema}.cases (manager_org_id, next_contact_due_on, case_id)
    where status = 'OPEN' and next_contact_code is not null;
create index cases_unreachable on {schema}.cases (manager_org_id, unreachable_since desc, case_id desc)
    where status = 'OPEN' and unreachable_since is not null;
