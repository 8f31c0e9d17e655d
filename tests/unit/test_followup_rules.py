"""Follow-up's rules, pure: who may hand a case over and on which basis, plan checks, versions,
action transitions, closure reasons, and "overdue" with a clock the test moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from pydantic import ValidationError

from contracts.commands import AssignCaseManagement, CloseCase, PlanGoalInput, ReopenCase, SavePlan
from contracts.events import SharingRecipient
from contracts.reference import ClosureReason, FollowupStatus, LegalBasis, PlanActionStatus
from kernel.config import plan_due_days
from services.followup import domain
from services.followup.domain import Refused
from services.intake.domain import Basis, Grant, case_access

ARRIVED = date(2026, 11, 28)


def case(**overrides: object) -> domain.FollowupCase:
    """DGME's case, managed by DGME, consent covering IOM (by id) and NGOs (by type) for FOLLOW_UP."""
    base = domain.FollowupCase(
        case_id="c1", owner_org_id="dgme", manager_org_id="dgme", status=FollowupStatus.OPEN, version=3,
        arrival_date=ARRIVED,
        recipients=(SharingRecipient(org_id="iom", legal_basis=LegalBasis.CONSENT),
                    SharingRecipient(org_type="NGO", legal_basis=LegalBasis.CONSENT)))
    return replace(base, **overrides)  # type: ignore[arg-type]


def assign(c: domain.FollowupCase, to: str, to_type: str | None = "INTERNATIONAL", by: str = "dgme",
           steward: bool = False) -> LegalBasis | None:
    return domain.assignment_basis(c, caller_org_id=by, caller_org_type="STATE", steward=steward, to_org_id=to,
                                   to_org_type=to_type)


def refusal(call: object) -> tuple[str, str | None]:
    with pytest.raises(Refused) as caught:
        call()  # type: ignore[operator]
    return caught.value.code, caught.value.field


# --- hand-over --------------------------------------------------------------------------------------


def test_the_manager_may_hand_over_to_an_organisation_the_consent_names_for_follow_up() -> None:
    assert assign(case(), "iom") == LegalBasis.CONSENT


def test_consent_to_a_type_of_organisation_covers_its_members() -> None:
    assert assign(case(), "croix-rouge", "NGO") == LegalBasis.CONSENT


def test_another_recorded_basis_covers_too() -> None:
    c = case(recipients=(SharingRecipient(org_id="unicef", legal_basis=LegalBasis.VITAL_INTEREST),))
    assert assign(c, "unicef") == LegalBasis.VITAL_INTEREST


def test_without_a_basis_the_hand_over_is_refused_naming_the_field() -> None:
    assert refusal(lambda: assign(case(), "unhcr")) == ("NO_LEGAL_BASIS", "organizationId")


def test_consent_for_referral_alone_does_not_cover_follow_up() -> None:
    # The recipients are those of FOLLOW_UP only: a referral consent is not in them.
    assert refusal(lambda: assign(case(recipients=()), "iom")) == ("NO_LEGAL_BASIS", "organizationId")


def test_handing_back_to_the_owner_needs_no_basis() -> None:
    assert assign(case(manager_org_id="iom"), "dgme", "STATE", by="iom") is None


def test_only_the_manager_or_the_steward_hands_over() -> None:
    managed = case(manager_org_id="iom")
    assert refusal(lambda: assign(managed, "croix-rouge", "NGO", by="dgme")) == ("FORBIDDEN", "caseId")
    assert refusal(lambda: assign(managed, "croix-rouge", "NGO", by="ame")) == ("NOT_FOUND", "caseId")
    assert assign(managed, "croix-rouge", "NGO", by="segin-steward", steward=True) == LegalBasis.CONSENT


def test_the_steward_does_not_hand_a_case_to_itself() -> None:
    covered = case(recipients=(SharingRecipient(org_type="STATE", legal_basis=LegalBasis.CONSENT),))
    assert refusal(lambda: assign(covered, "segin-steward", "STATE", by="segin-steward", steward=True)) == (
        "FORBIDDEN", "organizationId")


def test_once_no_basis_covers_the_manager_its_owner_takes_the_case_back_or_hands_it_on() -> None:
    """Consent withdrawn: the manager can no longer act, so the owner may hand the case over (ADR 0017)."""
    orphaned = case(manager_org_id="iom", manager_org_type="INTERNATIONAL",
                    recipients=(SharingRecipient(org_type="NGO", legal_basis=LegalBasis.CONSENT),))
    assert not orphaned.manager_covered()
    assert assign(orphaned, "dgme", "STATE", by="dgme") is None
    assert assign(orphaned, "croix-rouge", "NGO", by="dgme") == LegalBasis.CONSENT  # on to one a basis covers
    assert refusal(lambda: assign(orphaned, "unhcr", "INTERNATIONAL", by="dgme")) == ("NO_LEGAL_BASIS",
                                                                                       "organizationId")
    assert refusal(lambda: assign(orphaned, "dgme", "STATE", by="ame")) == ("NOT_FOUND", "caseId")
    assert refusal(lambda: assign(replace(orphaned, status=FollowupStatus.CLOSED), "dgme", "STATE", by="dgme")) == (
        "CASE_CLOSED", "caseId")


def test_while_a_basis_covers_the_manager_the_owner_may_not_take_the_case() -> None:
    by_type = case(manager_org_id="croix-rouge", manager_org_type="NGO")  # covered by consent to NGOs
    assert by_type.manager_covered()
    assert refusal(lambda: assign(by_type, "dgme", "STATE", by="dgme")) == ("FORBIDDEN", "caseId")
    # A hand-over older than the manager's type: any consent to a type may still cover it, so the owner waits.
    unknown = case(manager_org_id="croix-rouge", manager_org_type=None)
    assert unknown.manager_covered()
    assert not case(manager_org_id="croix-rouge", recipients=()).manager_covered()
    assert case().manager_covered()  # the owner managing its own case needs no basis


def test_a_manager_whose_basis_was_withdrawn_can_no_longer_act() -> None:
    assert refusal(lambda: assign(case(manager_org_id="iom", recipients=()), "dgme", by="iom")) == ("NOT_FOUND",
                                                                                                    "caseId")


def test_the_current_manager_and_a_closed_case_are_refused() -> None:
    assert refusal(lambda: assign(case(), "dgme")) == ("ALREADY_MANAGER", "organizationId")
    assert refusal(lambda: assign(case(status=FollowupStatus.CLOSED), "iom")) == ("CASE_CLOSED", "caseId")


def test_who_sees_the_follow_up() -> None:
    managed = case(manager_org_id="iom")
    assert domain.standing(managed, "dgme", "STATE") == "OWNER"
    assert domain.standing(managed, "iom", "INTERNATIONAL") == "MANAGER"
    assert domain.standing(managed, "croix-rouge", "NGO") is None  # covered, but not the manager
    assert domain.standing(case(manager_org_id="iom", recipients=()), "iom", "INTERNATIONAL") is None


# --- intake's read rule honours the manager ---------------------------------------------------------


def follow_up_consent(*orgs: str) -> Basis:
    return Basis(id="b", legal_basis=LegalBasis.CONSENT, given=True, purposes=frozenset({"FOLLOW_UP"}),  # type: ignore[arg-type]
                 org_ids=frozenset(orgs), org_types=frozenset(), withdrawn=False)


def test_intake_lets_the_manager_read_while_a_basis_covers_it_for_follow_up() -> None:
    access = case_access("dgme", "iom", "INTERNATIONAL", [], [follow_up_consent("iom")], manager="iom")
    assert access.allowed and access.purpose == "FOLLOW_UP" and access.legal_basis == LegalBasis.CONSENT
    assert not case_access("dgme", "iom", "INTERNATIONAL", [], [], manager="iom").allowed
    assert not case_access("dgme", "iom", "INTERNATIONAL", [], [follow_up_consent("iom")], manager="ame").allowed
    withdrawn = replace(follow_up_consent("iom"), withdrawn=True)
    assert not case_access("dgme", "iom", "INTERNATIONAL", [], [withdrawn], manager="iom").allowed


def test_a_previous_manager_keeps_only_what_another_basis_gives_it() -> None:
    # IOM handed over to AME: IOM's open referral (on consent for REFERRAL) still opens the case; nothing else does.
    referral_consent = Basis(id="r", legal_basis=LegalBasis.CONSENT, given=True,
                             purposes=frozenset({"REFERRAL"}), org_ids=frozenset({"iom"}),  # type: ignore[arg-type]
                             org_types=frozenset(), withdrawn=False)
    bases = [follow_up_consent("iom", "ame"), referral_consent]
    assert not case_access("dgme", "iom", None, [], bases, manager="ame").allowed
    grant = Grant("iom", LegalBasis.CONSENT, "PENDING")  # type: ignore[arg-type]
    assert case_access("dgme", "iom", None, [grant], bases, manager="ame").purpose == "REFERRAL"
    assert case_access("dgme", "dgme", None, [], [], manager="ame").allowed  # the owner stays the owner


# --- the plan and versions --------------------------------------------------------------------------


def goals(*actions: dict[str, object]) -> list[PlanGoalInput]:
    return [PlanGoalInput.model_validate({"dimension": "ECONOMIC", "description": "Relancer le commerce",
                                          "actions": list(actions)})]


def test_a_stale_version_is_a_conflict() -> None:
    domain.check_version(case(), 3)
    assert refusal(lambda: domain.check_version(case(), 2)) == ("CONFLICT", "version")


def test_a_plan_may_keep_its_own_actions_only() -> None:
    own = "0b9a4c43-6f2b-4a3e-9d2c-1b1e8f1f0a01"
    action = {"id": own, "description": "Formation", "target_date": "2026-12-20"}
    domain.check_plan(case(), goals({"description": "Formation", "target_date": "2026-12-20"}), {})
    domain.check_plan(case(), goals(action), {own: PlanActionStatus.PLANNED})
    other = {"id": "5c8e1a3e-0000-4000-8000-000000000000", "description": "x", "target_date": "2026-12-20"}
    assert refusal(lambda: domain.check_plan(case(), goals(other), {own: PlanActionStatus.PLANNED})) == (
        "BAD_USER_INPUT", "goals.0.actions.0.id")
    assert refusal(lambda: domain.check_plan(case(status=FollowupStatus.CLOSED), goals(), {})) == ("CASE_CLOSED",
                                                                                                  "caseId")


def test_a_goal_or_action_kept_by_id_may_leave_its_text_out_a_new_one_may_not() -> None:
    """A manager without the case's sensitive scopes cannot read the plan's text: it changes the plan
    by sending ids without descriptions, and the saved text is kept (never overwritten by a guess)."""
    own, goal = "0b9a4c43-6f2b-4a3e-9d2c-1b1e8f1f0a01", "7d4f2a10-0000-4000-8000-0000000000aa"
    kept = [PlanGoalInput.model_validate({"id": goal, "dimension": "ECONOMIC", "actions": [
        {"id": own, "target_date": "2026-12-20"}, {"description": "Nouvelle action", "target_date": "2026-12-30"}]})]
    domain.check_plan(case(), kept, {own: PlanActionStatus.PLANNED}, {goal})
    assert refusal(lambda: domain.check_plan(case(), kept, {own: PlanActionStatus.PLANNED}, set())) == (
        "BAD_USER_INPUT", "goals.0.id")
    twice = [kept[0], kept[0].model_copy(update={"actions": []})]
    assert refusal(lambda: domain.check_plan(case(), twice, {own: PlanActionStatus.PLANNED}, {goal})) == (
        "BAD_USER_INPUT", "goals.1.id")
    new_goal = [PlanGoalInput.model_validate({"dimension": "SOCIAL", "actions": []})]
    assert refusal(lambda: domain.check_plan(case(), new_goal, {})) == ("BAD_USER_INPUT", "goals.0.description")
    new_action = goals({"target_date": "2026-12-20"})
    assert refusal(lambda: domain.check_plan(case(), new_action, {})) == ("BAD_USER_INPUT",
                                                                          "goals.0.actions.0.description")
    same_action = goals({"id": own, "target_date": "2026-12-20"}, {"id": own, "target_date": "2026-12-21"})
    assert refusal(lambda: domain.check_plan(case(), same_action, {own: PlanActionStatus.PLANNED})) == (
        "BAD_USER_INPUT", "goals.0.actions.1.id")


def test_saving_the_plan_cannot_undo_a_final_action_state() -> None:
    own = "0b9a4c43-6f2b-4a3e-9d2c-1b1e8f1f0a01"
    kept = {"id": own, "description": "Formation", "target_date": "2026-12-20", "status": "PLANNED"}
    assert refusal(lambda: domain.check_plan(case(), goals(kept), {own: PlanActionStatus.DONE})) == (
        "INVALID_TRANSITION", "goals.0.actions.0.status")
    domain.check_plan(case(), goals({**kept, "status": "DONE"}), {own: PlanActionStatus.DONE})
    domain.check_plan(case(), goals({**kept, "status": "IN_PROGRESS"}), {own: PlanActionStatus.PLANNED})


def test_a_plan_needs_goals_in_known_dimensions_and_visible_text() -> None:
    ok = {"idempotency_key": "k" * 10, "case_id": "c1", "version": 0,
          "goals": [{"dimension": "PSYCHOSOCIAL", "description": "Soutien", "actions": []}]}
    SavePlan.model_validate(ok)
    for bad in ({**ok, "goals": []}, {**ok, "version": -1},
                {**ok, "goals": [{"dimension": "SPIRITUAL", "description": "x"}]},
                {**ok, "goals": [{"dimension": "SOCIAL", "description": "\u200b "}]},
                {**ok, "goals": [{"dimension": "SOCIAL", "description": "x", "actions": [
                    {"description": "a", "target_date": "2026-12-01", "status": "LOST"}]}]}):
        with pytest.raises(ValidationError):
            SavePlan.model_validate(bad)


def test_an_action_id_twice_is_refused() -> None:
    action = {"id": "a1", "description": "a", "target_date": "2026-12-01"}
    with pytest.raises(ValidationError):
        SavePlan.model_validate({"idempotency_key": "k" * 10, "case_id": "c1", "version": 0,
                                 "goals": [{"dimension": "SOCIAL", "description": "x", "actions": [action, action]}]})


def test_actions_move_on_while_open_and_stop_when_done_or_cancelled() -> None:
    P, I, D, C = (PlanActionStatus.PLANNED, PlanActionStatus.IN_PROGRESS, PlanActionStatus.DONE,
                  PlanActionStatus.CANCELLED)
    assert domain.action_transition(case(), P, I) == I
    assert domain.action_transition(case(), I, D) == D
    for old, new in ((D, P), (C, I), (P, P)):
        assert refusal(lambda old=old, new=new: domain.action_transition(case(), old, new)) == ("INVALID_TRANSITION",
                                                                                               "status")
    assert refusal(lambda: domain.action_transition(case(status=FollowupStatus.CLOSED), P, I))[0] == "CASE_CLOSED"


# --- closure ----------------------------------------------------------------------------------------


def test_closure_reasons_are_the_six_codes_and_the_one_a_merge_sets() -> None:
    assert {r.value for r in ClosureReason} == {"REINTEGRATED", "RE_MIGRATED", "UNREACHABLE", "DECEASED",
                                                "TRANSFERRED", "DECLINED_SUPPORT", "MERGED"}
    CloseCase.model_validate({"case_id": "c1", "reason": "RE_MIGRATED", "version": 1})
    with pytest.raises(ValidationError):
        CloseCase.model_validate({"case_id": "c1", "reason": "BORED", "version": 1})


@pytest.mark.parametrize("reason", ["AMINATA_COULIBALY_VIH_POSITIVE", "TRAORE", "specialised support", ""])
def test_hand_over_and_reopening_reasons_are_closed_lists_so_no_name_reaches_an_event(reason: str) -> None:
    with pytest.raises(ValidationError):
        AssignCaseManagement.model_validate({"case_id": "c1", "organization_id": "iom", "reason": reason})
    with pytest.raises(ValidationError):
        ReopenCase.model_validate({"case_id": "c1", "reason": reason, "version": 1})


def test_the_reasons_already_in_use_stay_valid() -> None:
    for reason in ("SPECIALISED_SUPPORT", "CHILD_PROTECTION_MANDATE", "CLOSER_TO_HOME", "MANAGER_LEFT",
                   "CONSENT_WITHDRAWN", "RETURN_TO_OWNER", "OTHER"):
        AssignCaseManagement.model_validate({"case_id": "c1", "organization_id": "iom", "reason": reason})
    for reason in ("CONTACT_RESUMED", "RETURNED_AGAIN", "NEW_NEEDS", "CLOSED_IN_ERROR", "OTHER"):
        ReopenCase.model_validate({"case_id": "c1", "reason": reason, "version": 1})


def test_closing_closes_the_open_actions_only_and_reopening_needs_a_closed_case() -> None:
    actions = [("a", PlanActionStatus.PLANNED), ("b", PlanActionStatus.IN_PROGRESS), ("c", PlanActionStatus.DONE),
               ("d", PlanActionStatus.CANCELLED)]
    assert domain.actions_closed_by_closure(actions) == ["a", "b"]
    assert domain.close(case()) == FollowupStatus.CLOSED
    assert refusal(lambda: domain.close(case(status=FollowupStatus.CLOSED)))[0] == "INVALID_TRANSITION"
    assert domain.reopen(case(status=FollowupStatus.CLOSED)) == FollowupStatus.OPEN
    assert refusal(lambda: domain.reopen(case()))[0] == "INVALID_TRANSITION"


# --- time -------------------------------------------------------------------------------------------


def test_a_plan_is_overdue_only_after_its_due_day_with_a_moved_clock() -> None:
    due = domain.plan_due_on(ARRIVED, 30)
    assert due == date(2026, 12, 28)
    assert not domain.plan_overdue(FollowupStatus.OPEN, False, due, date(2026, 12, 28))
    assert domain.plan_overdue(FollowupStatus.OPEN, False, due, date(2026, 12, 29))
    assert not domain.plan_overdue(FollowupStatus.OPEN, True, due, date(2027, 6, 1))  # a plan exists
    assert not domain.plan_overdue(FollowupStatus.CLOSED, False, due, date(2027, 6, 1))  # closed


def test_an_open_action_is_overdue_past_its_target_date() -> None:
    assert domain.action_overdue(PlanActionStatus.IN_PROGRESS, date(2026, 12, 1), date(2026, 12, 2))
    assert not domain.action_overdue(PlanActionStatus.IN_PROGRESS, date(2026, 12, 1), date(2026, 12, 1))
    assert not domain.action_overdue(PlanActionStatus.DONE, date(2026, 12, 1), date(2027, 1, 1))


def test_the_plan_due_days_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGIN_PLAN_DUE_DAYS", raising=False)
    assert plan_due_days() == 30
    monkeypatch.setenv("SEGIN_PLAN_DUE_DAYS", "14")
    assert plan_due_days() == 14
    for bad in ("0", "a month"):
        monkeypatch.setenv("SEGIN_PLAN_DUE_DAYS", bad)
        with pytest.raises(ValueError, match="SEGIN_PLAN_DUE_DAYS"):
            plan_due_days()


# --- merges (decision record 0026) ----------------------------------------------------------------------


@pytest.mark.parametrize(("survivor_arrived", "closes"), [
    (ARRIVED, True), (date(2026, 10, 29), True), (date(2026, 12, 28), True),  # 30 days either side: one return
    (date(2026, 10, 28), False), (date(2026, 12, 29), False), (date(2024, 4, 12), False),  # another return
])
def test_a_merge_closes_only_a_second_registration_of_the_same_return(survivor_arrived: date, closes: bool) -> None:
    assert domain.merge_closes(case(), case(case_id="c0", arrival_date=survivor_arrived)) is closes


def test_a_merge_never_closes_a_follow_up_closed_for_its_own_reason_nor_the_return_s_only_open_one() -> None:
    survivor = case(case_id="c0")
    assert not domain.merge_closes(case(status=FollowupStatus.CLOSED, closure_reason=ClosureReason.DECEASED), survivor)
    assert domain.merge_closes(case(status=FollowupStatus.CLOSED, closure_reason=ClosureReason.MERGED), survivor)
    closed_survivor = case(case_id="c0", status=FollowupStatus.CLOSED, closure_reason=ClosureReason.REINTEGRATED)
    assert not domain.merge_closes(case(), closed_survivor)


def test_a_follow_up_a_merge_closed_takes_no_command_and_nobody_closes_one_as_merged() -> None:
    merged = case(status=FollowupStatus.CLOSED, closure_reason=ClosureReason.MERGED)
    assert refusal(lambda: domain.not_merged(merged)) == ("CASE_CLOSED", "caseId")
    domain.not_merged(case(status=FollowupStatus.CLOSED, closure_reason=ClosureReason.REINTEGRATED))
    with pytest.raises(ValidationError, match="never by hand"):
        CloseCase(case_id="c1", reason=ClosureReason.MERGED, version=3)


def test_a_second_registration_of_the_same_return_is_not_re_opened_by_hand() -> None:
    closed = case(status=FollowupStatus.CLOSED, closure_reason=ClosureReason.UNREACHABLE, merged_into="c0")
    assert refusal(lambda: domain.reopen(closed, case(case_id="c0"))) == ("CASE_CLOSED", "caseId")
    assert domain.reopen(closed, case(case_id="c0", arrival_date=date(2024, 4, 12))) == FollowupStatus.OPEN
    assert domain.reopen(closed) == FollowupStatus.OPEN
