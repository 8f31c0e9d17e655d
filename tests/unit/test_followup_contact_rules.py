"""Follow-up contact rules (services/followup/domain.py), pure: a contact's date, who may read a note,
which marks a case's standing calls for and when a scan must look again, the unreachable flag's
changes; and the notices follow-up events lead to (services/notifications/domain.py)."""

from __future__ import annotations

from datetime import date

import pytest

from contracts.events import (
    MERGE_UNDONE,
    CaseAssignedV1,
    CaseClosedV1,
    CaseReopenedV1,
    CaseUnreachableV1,
    ContactDueV1,
    PlanOverdueV1,
)
from contracts.reference import ClosureReason, FollowupStatus
from services.followup import domain
from services.followup.schedule import Attempt, ContactState, shipped, standing
from services.followup.timers import TimerSettings
from services.notifications import domain as notices

RETURNED = date(2026, 1, 10)  # M1 due 10 February, opens the 3rd, on time until the 24th
DEFAULT = shipped().latest()
CASE = domain.FollowupCase("c", "dgme", "iom", FollowupStatus.OPEN, 1, RETURNED)


def at(today: date, *attempts: Attempt) -> domain.Standing:
    return standing(DEFAULT, RETURNED, attempts, today)


def test_a_contact_is_dated_neither_in_the_future_nor_before_arrival_on_an_open_follow_up() -> None:
    domain.check_contact(CASE, RETURNED, date(2026, 2, 1))
    domain.check_contact(CASE, date(2026, 2, 1), date(2026, 2, 1))
    for on, field in ((date(2026, 2, 2), "input.date"), (date(2026, 1, 9), "input.date")):
        with pytest.raises(domain.Refused) as refused:
            domain.check_contact(CASE, on, date(2026, 2, 1))
        assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", field)
    with pytest.raises(domain.Refused) as closed:
        domain.check_contact(domain.FollowupCase("c", "dgme", "iom", FollowupStatus.CLOSED, 1, RETURNED),
                             RETURNED, RETURNED)
    assert closed.value.code == "CASE_CLOSED"


def test_a_note_needs_the_scope_of_each_sensitive_category_and_every_one_when_unknown() -> None:
    assert domain.free_text_scopes([]) == []
    assert domain.free_text_scopes(["health", "child_protection"]) == ["sensitive:child_protection", "sensitive:health"]
    assert len(domain.free_text_scopes(None)) == 4
    assert domain.missing_free_text_scope(["health"], frozenset({"sensitive:health"})) is None
    assert domain.missing_free_text_scope(["health", "gbv"], frozenset({"sensitive:health"})) == "sensitive:gbv"
    assert domain.missing_free_text_scope(None, frozenset()) == "sensitive:child_protection"
    assert domain.free_text_categories(["health"]) == ["health"]
    assert domain.free_text_categories(None) == ["child_protection", "gbv", "health", "trafficking"]


def test_the_plans_text_is_hidden_with_the_scope_missing_and_its_structure_kept() -> None:
    """One rule for a case's free text: the plan's goals and actions as a contact's note and next step."""
    from datetime import UTC, datetime

    from services.followup import views

    row = {"has_plan": True, "plan_saved_at": datetime(2026, 2, 1, tzinfo=UTC), "plan_saved_by_org_id": "iom"}
    goals = [{"id": "g1", "dimension": "PSYCHOSOCIAL", "description": "Suivi après les violences subies", "actions": [
        {"id": "a1", "description": "Groupe de parole", "referral_id": None, "target_date": date(2026, 2, 1),
         "status": "PLANNED", "updated_at": datetime(2026, 2, 1, tzinfo=UTC)}]}]
    hidden = views.plan_view(row, goals, date(2026, 2, 5), "sensitive:gbv")
    assert hidden is not None
    [goal] = hidden.goals
    [action] = goal.actions
    assert (goal.dimension, goal.description, goal.text_restricted) == ("PSYCHOSOCIAL", None, "sensitive:gbv")
    assert (action.description, action.text_restricted, action.status, action.overdue) == (
        None, "sensitive:gbv", "PLANNED", True)
    shown = views.plan_view(row, goals, date(2026, 2, 5))
    assert shown is not None and shown.goals[0].description == "Suivi après les violences subies"
    contact = {"id": "c1", "contact_date": date(2026, 2, 3), "mode": "PHONE", "reached": True, "next_step": "Visite",
               "note": "Note", "logged_by_org_id": "iom", "logged_at": datetime(2026, 2, 3, tzinfo=UTC)}
    kept = views.contact_view(contact, "sensitive:gbv")
    assert (kept.note, kept.next_step, kept.text_restricted, kept.reached) == (None, None, "sensitive:gbv", True)


def test_a_contact_is_marked_due_in_its_window_and_overdue_after_it_and_the_scan_looks_again_then() -> None:
    before = at(date(2026, 2, 2))
    assert domain.marks_due(before) == [] and domain.next_check_on(before, date(2026, 2, 2)) == date(2026, 2, 3)
    due = at(date(2026, 2, 3))
    assert domain.marks_due(due) == [("M1", domain.Mark.DUE)]
    assert domain.next_check_on(due, date(2026, 2, 3)) == date(2026, 2, 25)
    late = at(date(2026, 2, 25))  # overdue when first seen: told as overdue only
    assert domain.marks_due(late) == [("M1", domain.Mark.OVERDUE)]
    assert domain.next_check_on(late, date(2026, 2, 25)) == date(2026, 3, 27)  # M3's window
    done = at(date(2026, 2, 25), Attempt(date(2026, 2, 12), True))
    assert domain.marks_due(done) == [] and done.contacts[0].state == ContactState.DONE
    everything_done = at(date(2027, 3, 1), *(Attempt(d, True) for d in (
        date(2026, 2, 10), date(2026, 4, 10), date(2026, 7, 10), date(2027, 1, 10))))
    assert domain.next_check_on(everything_done, date(2027, 3, 1)) == date.max


def test_the_unreachable_flag_is_raised_once_and_cleared_by_a_reached_contact() -> None:
    three = at(date(2026, 2, 8), *(Attempt(date(2026, 2, d), False) for d in (3, 5, 7)))
    assert domain.unreachable_change(three, flagged=False) is True
    assert domain.unreachable_change(three, flagged=True) is None
    four = at(date(2026, 2, 9), *(Attempt(date(2026, 2, d), False) for d in (3, 5, 7, 8)))
    assert domain.unreachable_change(four, flagged=True) is None  # still unreachable: not told again
    cleared = at(date(2026, 2, 9), Attempt(date(2026, 2, 3), False), Attempt(date(2026, 2, 9), True))
    assert domain.unreachable_change(cleared, flagged=True) is False


def test_follow_up_notices_go_to_the_manager_in_french_and_english_without_a_name() -> None:
    due = notices.notice_for_contact(ContactDueV1(
        case_id="c", manager_org_id="iom", schedule_id="DEFAULT", schedule_version=1, contact_code="M1",
        opens_on=date(2026, 2, 3), due_on=date(2026, 2, 10), overdue_after=date(2026, 2, 24)), overdue=False)
    assert (due.org_id, due.kind, due.title_fr, due.title_en, due.scope) == (
        "iom", "followup.contact_due", "Contact de suivi à faire (M1, prévu le 2026-02-10)",
        "Follow-up contact due (M1, on 2026-02-10)", None)
    assert notices.notice_for_unreachable(CaseUnreachableV1(
        case_id="c", manager_org_id="iom", failed_in_a_row=3, last_attempt_on=date(2026, 2, 7))).title_en == (
        "Person unreachable after 3 follow-up attempts")
    assert notices.notice_for_plan_overdue(PlanOverdueV1(case_id="c", manager_org_id="iom",
                                                         plan_due_on=date(2026, 2, 9))).kind == "followup.plan_overdue"
    assigned = notices.notice_for_assignment(CaseAssignedV1(
        case_id="c", owner_org_id="dgme", from_org_id="dgme", to_org_id="iom", reason_code="X", legal_basis=None,
        assigned_by_org_id="dgme", version=1))
    assert (assigned.org_id, assigned.kind) == ("iom", "followup.case_assigned")


def test_only_a_closure_or_re_opening_by_a_merge_is_told_to_the_manager() -> None:
    """The manager closes and re-opens by hand itself: nobody is told. A merge does it for it (decision 0026)."""
    def closed(reason: ClosureReason) -> CaseClosedV1:
        return CaseClosedV1(case_id="c", manager_org_id="iom", reason=reason, closed_action_ids=[], version=2)

    merged = notices.notice_for_closure(closed(ClosureReason.MERGED))
    assert merged is not None and (merged.org_id, merged.kind) == ("iom", "followup.case_merged")
    assert notices.notice_for_closure(closed(ClosureReason.REINTEGRATED)) is None
    undone = notices.notice_for_reopening(CaseReopenedV1(case_id="c", manager_org_id="iom",
                                                         reason_code=MERGE_UNDONE, version=3))
    assert undone is not None and (undone.kind, undone.title_en) == ("followup.merge_undone",
                                                                     "Follow-up re-opened: merge undone")
    assert notices.notice_for_reopening(CaseReopenedV1(case_id="c", manager_org_id="iom",
                                                       reason_code="NEW_NEEDS", version=3)) is None


def test_the_scan_settings_come_from_the_environment_and_a_bad_value_refuses_to_start() -> None:
    assert TimerSettings.from_env({}) == TimerSettings(batch=500, scan_seconds=60.0)
    assert TimerSettings.from_env({"SEGIN_FOLLOWUP_SCAN_SECONDS": "1", "SEGIN_FOLLOWUP_SCAN_BATCH": "50"}) == \
        TimerSettings(batch=50, scan_seconds=1.0)
    for name, value in (("SEGIN_FOLLOWUP_SCAN_SECONDS", "0"), ("SEGIN_FOLLOWUP_SCAN_BATCH", "lots")):
        with pytest.raises(ValueError, match=name):
            TimerSettings.from_env({name: value})


def test_of_several_contacts_overdue_at_once_only_the_latest_is_told() -> None:
    long_after = at(date(2026, 7, 1))  # M1 and M3 overdue, M6 due
    marks = domain.marks_due(long_after)
    assert marks == [("M1", domain.Mark.OVERDUE), ("M3", domain.Mark.OVERDUE), ("M6", domain.Mark.DUE)]
    assert domain.marks_told(marks) == [("M3", domain.Mark.OVERDUE), ("M6", domain.Mark.DUE)]
    assert domain.marks_told([("M1", domain.Mark.DUE)]) == [("M1", domain.Mark.DUE)]
    assert domain.marks_told([]) == []
