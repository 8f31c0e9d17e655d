"""The arrival form for KoboToolbox / ODK Collect, generated from the contracts, and the reading of
its submissions back into a ``RegisterArrival``.

Field teams at border posts capture offline with Kobo or ODK Collect; the form they use must ask
exactly what ``RegisterArrival`` takes, with the same codes, or submissions would be refused once the
network is back. So the form is not written by hand: every question is a field of the command (or of
its ``ConsentInput``), its choices are the enums' values (sex, arrival point, vulnerabilities,
purposes, organisation types) and the region codes of ``mali-regions.csv``, its required flags and
numeric bounds come from the pydantic fields, and ``tests/unit/test_xlsform.py`` converts it with
pyxform and fails when a field or a choice is missing.

``python -m contracts.xlsform arrival-form.xlsx`` writes it; the gateway serves it at
``GET /offline/arrival-form.xlsx``. Submissions arrive as KoboToolbox REST-service JSON: flat keys
``group/field`` (``identity/given_name``), string values, select_multiple answers as space-separated
codes, and metadata (``meta/instanceID``, ``_uuid``, ``_id``, ``_submission_time``…).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from annotated_types import Ge, Le

from contracts.commands import ConsentInput, RegisterArrival
from contracts.reference import (
    ArrivalPoint,
    GivenBy,
    OrganisationType,
    Purpose,
    Sex,
    Vulnerability,
    regions,
)

FORM_ID = "segin_arrival"
FR, EN = "Français (fr)", "English (en)"
LANGUAGES = (FR, EN)

# Choice labels, French first. A value missing here is a test failure (every enum value is labelled).
LABELS: dict[str, tuple[str, str]] = {
    # sex
    "FEMALE": ("Femme", "Female"), "MALE": ("Homme", "Male"), "OTHER": ("Autre", "Other"),
    "UNKNOWN": ("Inconnu", "Unknown"),
    # arrival points (OTHER is shared with sex)
    "BAMAKO_AIRPORT": ("Aéroport de Bamako", "Bamako airport"), "GAO": ("Gao", "Gao"), "KAYES": ("Kayes", "Kayes"),
    "BORDER_POST": ("Poste frontière", "Border post"), "BUS_STATION": ("Gare routière", "Bus station"),
    # vulnerabilities (IOM determinants)
    "UNACCOMPANIED_CHILD": ("Enfant non accompagné", "Unaccompanied child"),
    "SEPARATED_CHILD": ("Enfant séparé", "Separated child"),
    "TRAFFICKING_VICTIM": ("Victime de traite", "Victim of trafficking"),
    "GBV_SURVIVOR": ("Survivant·e de VBG", "GBV survivor"),
    "VIOLENCE_IN_TRANSIT": ("Violences pendant le trajet", "Violence in transit"),
    "MEDICAL_NEEDS": ("Besoins médicaux", "Medical needs"),
    "MENTAL_HEALTH_NEEDS": ("Besoins en santé mentale", "Mental-health needs"),
    "DISABILITY": ("Handicap", "Disability"), "PREGNANT": ("Grossesse", "Pregnant"),
    "ELDERLY": ("Personne âgée", "Elderly"), "SINGLE_PARENT": ("Parent seul", "Single parent"),
    "EX_DETAINEE": ("Ancien·ne détenu·e", "Former detainee"),
    "INTERNATIONAL_PROTECTION": ("Besoin de protection internationale", "International protection needs"),
    # purposes
    "REFERRAL": ("Orientation vers un service", "Referral to a service"),
    "FOLLOW_UP": ("Suivi de la réintégration", "Reintegration follow-up"),
    "FAMILY_TRACING": ("Recherche familiale", "Family tracing"),
    # organisation types
    "STATE": ("Services de l'État", "State bodies"), "NGO": ("ONG", "NGOs"),
    "INTERNATIONAL": ("Organisations internationales", "International organisations"),
    "DIASPORA": ("Associations de la diaspora", "Diaspora associations"),
    "SERVICE_PROVIDER": ("Prestataires de services", "Service providers"),
    # who gave consent
    "PERSON": ("La personne elle-même", "The person"), "GUARDIAN": ("Son tuteur ou représentant légal", "A guardian"),
    # yes / no
    "yes": ("Oui", "Yes"), "no": ("Non", "No"),
    # languages consent was given in
    "fr": ("Français", "French"), "bm": ("Bambara", "Bambara"), "en": ("Anglais", "English"),
    "ar": ("Arabe", "Arabic"), "ff": ("Peul (fulfulde)", "Fula"), "son": ("Songhaï", "Songhay"),
    "tmh": ("Tamasheq", "Tamasheq"), "snk": ("Soninké", "Soninke"),
}
CONSENT_LANGUAGES = ("fr", "bm", "en", "ar", "ff", "son", "tmh", "snk")


def _enum_choices(values: Iterable[StrEnum | str]) -> list[tuple[str, str, str]]:
    return [(str(v), *LABELS[str(v)]) for v in values]


def choice_lists() -> dict[str, list[tuple[str, str, str]]]:
    """Every list of the form: (code, French label, English label)."""
    return {
        "sex": _enum_choices(Sex),
        "arrival_point": _enum_choices(ArrivalPoint),
        "region": [(code, f"{code} – {name}", f"{code} – {name}") for code, name in sorted(regions().items())],
        "vulnerability": _enum_choices(Vulnerability),
        "purpose": _enum_choices(Purpose),
        "org_type": _enum_choices(OrganisationType),
        "given_by": _enum_choices(GivenBy),
        "yes_no": _enum_choices(["yes", "no"]),
        "language": _enum_choices(CONSENT_LANGUAGES),
    }


@dataclass(frozen=True)
class Question:
    """One row of the survey sheet. ``target`` is where the answer goes in ``RegisterArrival``
    (``consent.given``…); ``kind`` says how a submitted string becomes that value."""

    type: str
    name: str
    fr: str
    en: str
    target: str | None = None
    kind: str = "text"  # text | int | date | multi | yes_no | phone
    required: bool = False
    relevant: str | None = None
    constraint: str | None = None
    constraint_fr: str | None = None
    constraint_en: str | None = None
    hint_fr: str | None = None
    hint_en: str | None = None
    default: str | None = None
    appearance: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _bounds(model: type[Any], name: str) -> tuple[int | None, int | None]:
    """A numeric field's ge/le as the contract declares them."""
    low = high = None
    for item in model.model_fields[name].metadata:
        if isinstance(item, Ge):
            low = int(item.ge)  # type: ignore[call-overload]
        if isinstance(item, Le):
            high = int(item.le)  # type: ignore[call-overload]
    return low, high


def _required(model: type[Any], name: str) -> bool:
    return bool(model.model_fields[name].is_required())


NOT_IN_FUTURE = ". <= today()"
PHONE = r"regex(., '^\+?[0-9][0-9 ]{6,18}[0-9]$')"


def questions() -> list[Question]:
    """The survey sheet's questions, in the order they are asked (groups are added by ``survey_rows``)."""
    r, c = RegisterArrival, ConsentInput
    age_low, age_high = _bounds(r, "estimated_age")
    return [
        # identity
        Question("text", "given_name", "Prénom(s)", "Given name(s)", "given_name", required=_required(r, "given_name")),
        Question("text", "family_name", "Nom de famille", "Family name", "family_name",
                 required=_required(r, "family_name")),
        Question("select_one sex", "sex", "Sexe", "Sex", "sex", required=_required(r, "sex")),
        Question("select_one yes_no", "dob_known", "La date de naissance est-elle connue ?", "Is the date of birth known?",
                 required=True),
        Question("date", "date_of_birth", "Date de naissance", "Date of birth", "date_of_birth", kind="date",
                 required=True, relevant="${dob_known} = 'yes'",
                 constraint=f"{NOT_IN_FUTURE} and . >= date('1900-01-01')",
                 constraint_fr="Pas dans le futur, ni avant 1900", constraint_en="Not in the future, nor before 1900"),
        Question("integer", "estimated_age", "Âge estimé (années)", "Estimated age (years)", "estimated_age", kind="int",
                 required=True, relevant="${dob_known} = 'no'", constraint=f". >= {age_low} and . <= {age_high}",
                 constraint_fr=f"Entre {age_low} et {age_high} ans", constraint_en=f"Between {age_low} and {age_high}"),
        Question("text", "phone_number", "Numéro de téléphone", "Phone number", "phone_numbers", kind="phone",
                 constraint=PHONE, constraint_fr="Un numéro de téléphone, ex. +223 76 12 34 56",
                 constraint_en="A phone number, e.g. +223 76 12 34 56", appearance="numbers",
                 hint_fr="Sans indicatif, un numéro malien", hint_en="Without a country code, a Malian number"),
        Question("text", "phone_number_2", "Autre numéro de téléphone", "Other phone number", "phone_numbers",
                 kind="phone", constraint=PHONE, constraint_fr="Un numéro de téléphone, ex. +223 76 12 34 56",
                 constraint_en="A phone number, e.g. +223 76 12 34 56", appearance="numbers",
                 relevant="${phone_number} != ''"),
        Question("text", "place_of_origin", "Lieu d'origine (village, commune ou cercle)",
                 "Place of origin (village, commune or cercle)", "place_of_origin"),
        # arrival
        Question("text", "country_returned_from", "Pays de retour (code ISO à 2 lettres)",
                 "Country returned from (2-letter ISO code)", "country_returned_from",
                 required=_required(r, "country_returned_from"), constraint="regex(., '^[A-Z]{2}$')",
                 constraint_fr="Deux lettres majuscules, ex. LY, DZ, NE", constraint_en="Two capital letters, e.g. LY",
                 hint_fr="Libye : LY, Algérie : DZ, Niger : NE", hint_en="Libya: LY, Algeria: DZ, Niger: NE"),
        Question("select_one arrival_point", "arrival_point", "Point d'arrivée", "Arrival point", "arrival_point",
                 required=_required(r, "arrival_point")),
        Question("date", "arrival_date", "Date d'arrivée", "Arrival date", "arrival_date", kind="date",
                 required=_required(r, "arrival_date"), constraint=f"{NOT_IN_FUTURE} and . >= date('2000-01-01')",
                 constraint_fr="Pas dans le futur", constraint_en="Not in the future", default="today()"),
        Question("select_one region", "destination_region", "Région de destination", "Destination region",
                 "destination_region", required=_required(r, "destination_region")),
        # screening
        Question("select_multiple vulnerability", "vulnerabilities", "Vulnérabilités constatées",
                 "Vulnerabilities found", "vulnerabilities", kind="multi"),
        # consent
        Question("select_one yes_no", "consent_given",
                 "La personne consent-elle au partage de ses données pour l'aider ?",
                 "Does the person consent to their data being shared to help them?", "consent.given", kind="yes_no",
                 required=_required(c, "given"),
                 hint_fr="Le refus est enregistré aussi : l'assistance n'en dépend jamais.",
                 hint_en="A refusal is recorded too: assistance never depends on it."),
        Question("select_multiple purpose", "consent_purposes", "Pour quelles finalités ?", "For which purposes?",
                 "consent.purposes", kind="multi", required=True, relevant="${consent_given} = 'yes'"),
        Question("select_multiple org_type", "consent_recipient_types", "Avec quels types d'organisations ?",
                 "With which kinds of organisation?", "consent.recipient_org_types", kind="multi",
                 relevant="${consent_given} = 'yes'"),
        Question("select_one given_by", "consent_given_by", "Consentement donné par", "Consent given by",
                 "consent.given_by", required=True, default="PERSON"),
        Question("text", "consent_guardian_name", "Nom du tuteur", "Guardian's name", "consent.guardian_name",
                 required=True, relevant="${consent_given_by} = 'GUARDIAN'"),
        Question("select_one language", "consent_language", "Langue du recueil du consentement",
                 "Language consent was given in", "consent.language", required=True, default="fr"),
    ]


GROUPS = (
    ("identity", "Identité", "Identity", ("given_name", "family_name", "sex", "dob_known", "date_of_birth",
                                          "estimated_age", "phone_number", "phone_number_2", "place_of_origin")),
    ("arrival", "Arrivée", "Arrival", ("country_returned_from", "arrival_point", "arrival_date", "destination_region")),
    ("screening", "Dépistage", "Screening", ("vulnerabilities",)),
    ("consent", "Consentement", "Consent", ("consent_given", "consent_purposes", "consent_recipient_types",
                                            "consent_given_by", "consent_guardian_name", "consent_language")),
)
# Fields of the command the form does not ask, and why (the test checks every other field is asked).
NOT_ASKED = {
    "consent.recipient_org_ids": "organisations are named by type on the form; a case worker can name one later",
    "links": "family links name other cases, which a device offline cannot know; they are made once synced",
}
SURVEY_COLUMNS = ("type", "name", f"label::{FR}", f"label::{EN}", f"hint::{FR}", f"hint::{EN}", "required",
                  "relevant", "constraint", f"constraint_message::{FR}", f"constraint_message::{EN}", "default",
                  "appearance")


def survey_rows() -> list[dict[str, str]]:
    by_name = {q.name: q for q in questions()}
    rows: list[dict[str, str]] = []
    for group, fr, en, names in GROUPS:
        rows.append({"type": "begin_group", "name": group, f"label::{FR}": fr, f"label::{EN}": en})
        for name in names:
            q = by_name.pop(name)
            rows.append({k: v for k, v in {
                "type": q.type, "name": q.name, f"label::{FR}": q.fr, f"label::{EN}": q.en,
                f"hint::{FR}": q.hint_fr, f"hint::{EN}": q.hint_en, "required": "yes" if q.required else None,
                "relevant": q.relevant, "constraint": q.constraint, f"constraint_message::{FR}": q.constraint_fr,
                f"constraint_message::{EN}": q.constraint_en, "default": q.default, "appearance": q.appearance,
            }.items() if v})
        rows.append({"type": "end_group", "name": group})
    assert not by_name, f"questions outside any group: {sorted(by_name)}"
    return rows


def form_version() -> str:
    """Changes whenever the form does (Kobo and ODK tell form versions apart by this string)."""
    digest = hashlib.sha256(json.dumps([survey_rows(), choice_lists()], sort_keys=True).encode()).hexdigest()
    return digest[:10]


def settings_row() -> dict[str, str]:
    return {"form_title": "Segin – Accueil d'une personne de retour", "form_id": FORM_ID, "version": form_version(),
            "default_language": FR}


def workbook_bytes() -> bytes:
    """The XLSForm as an .xlsx file (survey, choices and settings sheets)."""
    from openpyxl import Workbook  # only the gateway and the CLI build the file

    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    survey.append(list(SURVEY_COLUMNS))
    for row in survey_rows():
        survey.append([row.get(column, "") for column in SURVEY_COLUMNS])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", f"label::{FR}", f"label::{EN}"])
    for list_name, items in choice_lists().items():
        for code, fr, en in items:
            choices.append([list_name, code, fr, en])
    settings = book.create_sheet("settings")
    row = settings_row()
    settings.append(list(row))
    settings.append(list(row.values()))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- reading submissions back -------------------------------------------------------------------

SUBMISSION_ID_MAX = 100


@dataclass(frozen=True)
class Submission:
    """A submission read from KoboToolbox's REST-service JSON: its id (``meta/instanceID``, else
    ``uuid:`` + ``_uuid``; None when it has neither), when Kobo received it, and the answers as a
    ``RegisterArrival`` payload (not yet validated: only the form's fields, nothing of Kobo's metadata)."""

    submission_id: str | None
    submitted_at: str | None
    arrival: dict[str, Any]


def _leaf(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return text or None


def _convert(question: Question, text: str) -> Any:
    if question.kind == "int":
        try:
            return int(text)
        except ValueError:
            return text  # the contract names the field and says it is not an integer
    if question.kind == "multi":
        return text.split()
    if question.kind == "yes_no":
        return {"yes": True, "no": False}.get(text, text)
    return text


def read_submission(payload: Mapping[str, Any]) -> Submission:
    """Map one Kobo/ODK submission onto ``RegisterArrival``'s fields. Answers to questions that were not
    relevant (``dob_known`` says which of date of birth and estimated age) are left out; values are
    converted, not validated: the contract does that and names the field at fault."""
    by_name = {q.name: q for q in questions()}
    answers: dict[str, str] = {}
    for key, value in payload.items():
        name = _leaf(str(key))
        text = _text(value)
        if name in by_name and text is not None and not str(key).startswith("_"):
            answers[name] = text
    arrival: dict[str, Any] = {}
    consent: dict[str, Any] = {}
    phones: list[str] = []
    known = answers.get("dob_known")
    for name, text in answers.items():
        question = by_name[name]
        if question.target is None:
            continue
        if (name == "date_of_birth" and known == "no") or (name == "estimated_age" and known == "yes"):
            continue
        if question.kind == "phone":
            phones.append(text)
            continue
        value = _convert(question, text)
        if question.target.startswith("consent."):
            consent[question.target.removeprefix("consent.")] = value
        else:
            arrival[question.target] = value
    if consent.get("given") is False:  # purposes and recipients are asked only when consent is given
        consent.pop("purposes", None)
        consent.pop("recipient_org_types", None)
    if consent.get("given_by") != GivenBy.GUARDIAN.value:
        consent.pop("guardian_name", None)
    if phones:
        arrival["phone_numbers"] = phones
    if consent:
        arrival["consent"] = consent
    instance = _text(payload.get("meta/instanceID")) or _text(payload.get("instanceID"))
    uuid_ = _text(payload.get("_uuid"))
    submission_id = instance or (f"uuid:{uuid_}" if uuid_ else None)
    if submission_id is not None:
        submission_id = submission_id[:SUBMISSION_ID_MAX]
    return Submission(submission_id, _text(payload.get("_submission_time")), arrival)


def question_for(field: str) -> str:
    """The form question a contract's field path is asked by (``consent.given`` → ``consent_given``,
    ``phone_numbers.1`` → ``phone_number_2``), so a rejection names what the field team sees; else the path."""
    parts = field.split(".")
    if parts[0] == "phone_numbers":
        return "phone_number_2" if parts[1:2] == ["1"] else "phone_number"
    target = ".".join(parts[:2]) if parts[0] == "consent" else parts[0]
    for question in questions():
        if question.target == target:
            return question.name
    return field


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = args[0] if args else "arrival-form.xlsx"
    with open(target, "wb") as out:
        out.write(workbook_bytes())
    print(f"arrival form (version {form_version()}) written to {target}")


if __name__ == "__main__":
    main()
