"""Reading a passenger list (manifest), free of I/O: the file's rows, which column holds what, and
each row checked with the same validators as ``registerArrival`` (``contracts.commands``).

A manifest is what a sender (an IOM mission, an embassy, a convoy organiser) happens to produce:
CSV from Excel (UTF-8, with or without BOM, ``;`` as Excel-FR writes it, or ``,``), or XLSX (first
sheet). Column headers are recognised in French and English whatever their case and accents
(``docs/manifests.md``); an explicit mapping wins for the columns it names. Every problem is
reported by row (as the spreadsheet numbers it: the header is row 1 when it is the first line),
column (the sender's header) and reason; rows without problems are kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.commands import BIRTH_FLOOR, MAX_MANIFEST_ROWS, Name, PersonPhone, PlaceName
from contracts.reference import ManifestField, Sex, regions
from kernel.errors import BadInput

HEADER_SEARCH_ROWS = 10  # a title or a blank line above the header is common; look this far for it
MAX_COLUMNS = 60
MAX_CELL = 500  # characters kept of a cell (longer ones are refused by the field's own bound anyway)
# Bounds on the work one file may cause (the file is read on the service's event loop): a few hundred bytes of
# XLSX can declare a row a million lines down (each empty row in between is produced and scanned), and a
# compressed part can expand a thousandfold (openpyxl loads the shared strings whole).
MAX_LINE_NUMBER = 10_000  # no row of a passenger list lies further down a sheet than this (XLSX)
MAX_XLSX_UNCOMPRESSED = 8_000_000  # bytes, all parts of the workbook together (3000 real rows take 2 to 4 MB)

# What each field is called in the files senders send, normalised (``normalise_header``).
DEFAULT_HEADERS: dict[ManifestField, tuple[str, ...]] = {
    ManifestField.FAMILY_NAME: ("nom", "nom de famille", "noms", "nom patronymique", "surname", "family name",
                                "last name", "lastname", "surnames"),
    ManifestField.GIVEN_NAME: ("prenom", "prenoms", "prenom s", "given name", "given names", "first name",
                               "first names", "firstname", "forename", "forenames"),
    ManifestField.SEX: ("sexe", "sex", "genre", "gender", "m f", "h f"),
    ManifestField.DATE_OF_BIRTH: ("date de naissance", "date naissance", "ne le", "nee le", "ne e le", "dob",
                                  "date of birth", "birth date", "birthdate", "d o b"),
    ManifestField.ESTIMATED_AGE: ("age", "age estime", "age ans", "age en annees", "estimated age", "age years",
                                  "age yrs"),
    ManifestField.PHONE: ("telephone", "tel", "numero de telephone", "n telephone", "no telephone", "contact",
                          "telephone portable", "portable", "cellulaire", "phone", "phone number", "phone no",
                          "mobile", "mobile number", "telephone number"),
    ManifestField.DOCUMENT_NUMBER: ("n passeport", "no passeport", "numero passeport", "numero de passeport",
                                    "passeport", "n de passeport", "laissez passer", "n laissez passer",
                                    "n document", "numero du document", "document de voyage", "passport",
                                    "passport no", "passport number", "passport n", "travel document",
                                    "document number", "document no", "laissez passer no"),
    ManifestField.PLACE_OF_ORIGIN: ("lieu d origine", "localite d origine", "village d origine", "commune d origine",
                                    "lieu de provenance", "origine", "village", "place of origin", "origin",
                                    "home town", "hometown", "home village"),
    ManifestField.HOUSEHOLD: ("menage", "famille", "menage famille", "n menage", "no menage", "ref menage",
                              "reference menage", "groupe familial", "household", "household ref",
                              "household reference", "household id", "family", "family id", "family group"),
    ManifestField.RELATIONSHIP: ("lien de parente", "lien", "parente", "lien familial", "relationship",
                                 "relation", "relationship to head", "relationship to head of household"),
    ManifestField.DESTINATION_REGION: ("region de destination", "region destination", "destination", "region",
                                       "destination region", "region of destination"),
}
_ALIASES = {alias: f for f, aliases in DEFAULT_HEADERS.items() for alias in aliases}

# The row model's field filled by each manifest field.
ROW_FIELD: dict[ManifestField, str] = {
    ManifestField.GIVEN_NAME: "given_name", ManifestField.FAMILY_NAME: "family_name", ManifestField.SEX: "sex",
    ManifestField.DATE_OF_BIRTH: "date_of_birth", ManifestField.ESTIMATED_AGE: "estimated_age",
    ManifestField.PHONE: "phone_numbers", ManifestField.DOCUMENT_NUMBER: "document_number",
    ManifestField.PLACE_OF_ORIGIN: "place_of_origin", ManifestField.HOUSEHOLD: "household_ref",
    ManifestField.RELATIONSHIP: "relationship", ManifestField.DESTINATION_REGION: "destination_region",
}
REQUIRED = (ManifestField.FAMILY_NAME, ManifestField.GIVEN_NAME, ManifestField.SEX)
AGE_FIELDS = (ManifestField.DATE_OF_BIRTH, ManifestField.ESTIMATED_AGE)  # at least one of them

_SEXES = {
    Sex.MALE: {"m", "h", "homme", "masculin", "male", "man", "garcon", "g"},
    Sex.FEMALE: {"f", "femme", "feminin", "female", "woman", "fille"},
}
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")
_AGE = re.compile(r"^(\d{1,3})(?:[.,]0+)?\s*(?:ans?|years?|yrs?|y)?$")
_PHONE_SPLIT = re.compile(r"\s*[/;,|]\s*|\s+(?:ou|or)\s+")


def fold(text: str) -> str:
    """Lower case, accents removed, anything but letters and digits turned into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def normalise_header(header: str) -> str:
    """``N° passeport`` → ``n passeport``, ``Prénom(s)`` → ``prenom s``, ``Âge`` → ``age``."""
    return fold(header.replace("°", " ").replace("º", " "))


def recognise(header: str) -> ManifestField | None:
    """The field a header names by default, or None."""
    key = normalise_header(header)
    return _ALIASES.get(key) or _ALIASES.get(re.sub(r"\s*\d+$", "", key))  # "Téléphone 2" is a phone too


# --- the file ------------------------------------------------------------------------------------

def _is_xlsx(content: bytes) -> bool:
    return content[:4] == b"PK\x03\x04"


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):  # Excel-FR's "CSV (séparateur : point-virgule)" may be cp1252
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadInput("The file is neither UTF-8 text nor an XLSX workbook.", field="file")


def _csv_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    text = _decode(content)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield reader.line_num, list(row[:MAX_COLUMNS])
    except csv.Error as exc:
        raise BadInput(f"The CSV file cannot be read near line {reader.line_num}: {exc}.", field="file") from None


UNREADABLE_XLSX = "The XLSX file cannot be read (is it an Excel workbook?)."


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # only when an XLSX file comes

    try:
        # A part's declared size bounds what reading it yields (zipfile stops there): checked before anything expands.
        expanded = sum(part.file_size for part in zipfile.ZipFile(io.BytesIO(content)).infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BadInput(UNREADABLE_XLSX, field="file") from None
    if expanded > MAX_XLSX_UNCOMPRESSED:
        raise BadInput(f"The XLSX file expands to more than {MAX_XLSX_UNCOMPRESSED // 1_000_000} MB; save it again "
                       "with only the passenger list, or as CSV.", field="file")
    # Any failure of the parser is the file's: BAD_USER_INPUT, never an internal error whose message (a
    # cell's value: "invalid literal for int() with base 10: 'Keïta'") would reach the traces.
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 (a hostile file can make openpyxl fail in many ways)
        raise BadInput(UNREADABLE_XLSX, field="file") from None
    try:
        sheet = book.worksheets[0]
        rows = enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1)
        while True:
            try:
                number, row = next(rows)
            except StopIteration:
                return
            except Exception:  # noqa: BLE001
                raise BadInput(UNREADABLE_XLSX, field="file") from None
            if number > MAX_LINE_NUMBER:  # the rows in between are produced one by one: stop here
                raise BadInput(f"The sheet goes on past row {MAX_LINE_NUMBER}; remove the empty rows below the "
                               "list, or split it.", field="file")
            yield number, list(row)
    finally:
        book.close()


def table(content: bytes) -> list[tuple[int, list[Any]]]:
    """The file's non-empty rows, each with its number as the spreadsheet shows it."""
    rows = _xlsx_rows(content) if _is_xlsx(content) else _csv_rows(content)
    kept = []
    for number, cells in rows:
        if any(_text(c) for c in cells):
            kept.append((number, cells))
            if len(kept) > MAX_MANIFEST_ROWS + HEADER_SEARCH_ROWS:
                raise BadInput(f"The file has more than {MAX_MANIFEST_ROWS} rows; split it.", field="file")
    return kept


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip()[:MAX_CELL]


# --- the columns ---------------------------------------------------------------------------------

@dataclass
class Columns:
    """Which column (by index) fills which field, and the sender's header of each."""

    by_index: dict[int, ManifestField]
    headers: dict[int, str]
    header_row: int
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def column_of(self, row_field: str) -> str | None:
        for index, f in self.by_index.items():
            if ROW_FIELD.get(f) == row_field:
                return self.headers[index]
        return None

    def used(self) -> list[dict[str, str]]:
        return [{"column": self.headers[i], "field": f.value} for i, f in sorted(self.by_index.items())]


def _problem(row: int | None, column: str | None, field_name: str | None, reason: str) -> dict[str, Any]:
    return {"row": row, "column": column, "field": field_name, "reason": reason}


def columns(rows: list[tuple[int, list[Any]]], explicit: dict[str, ManifestField]) -> Columns:
    """Find the header row and map its columns; a missing required column is one file-level error."""
    explicit_keys = {normalise_header(k): v for k, v in explicit.items()}

    def field_of(header: str) -> ManifestField | None:
        return explicit_keys.get(normalise_header(header)) or recognise(header)

    if not rows:
        raise BadInput("The file is empty.", field="file")
    header_at = 0
    for i, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if sum(1 for c in cells if _text(c) and field_of(_text(c)) not in (None, ManifestField.IGNORE)) >= 2:
            header_at = i
            break
    number, cells = rows[header_at]
    found = Columns({}, {}, number)
    for index, cell in enumerate(cells):
        header = _text(cell)
        if not header:
            continue
        found.headers[index] = header
        target = field_of(header)
        if target is None:
            found.warnings.append(_problem(number, header, None, "column not recognised; ignored (give a mapping "
                                                                 "to read it)"))
        elif target == ManifestField.IGNORE:
            continue
        elif target in found.by_index.values() and target != ManifestField.PHONE:
            found.warnings.append(_problem(number, header, ROW_FIELD[target],
                                           "a second column for the same field; ignored"))
        else:
            found.by_index[index] = target
    present = set(found.by_index.values())
    missing = [f for f in REQUIRED if f not in present]
    problems = [_problem(number, None, ROW_FIELD[f], f"no column for {f.value}; name it as in docs/manifests.md "
                                                     "or give a mapping") for f in missing]
    if not present & set(AGE_FIELDS):
        problems.append(_problem(number, None, "date_of_birth", "no column for DATE_OF_BIRTH nor ESTIMATED_AGE"))
    if problems:
        names = ", ".join(p["field"] for p in problems)
        raise BadInput(f"The file lacks a required column ({names}); see docs/manifests.md for the recognised "
                       "headers, or give a mapping.", field="file",
                       problems=[{"field": "file", "message": f"row {p['row']}: {p['reason']}"} for p in problems])
    return found


# --- the rows ------------------------------------------------------------------------------------

def _line(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must not contain control characters")
    return value


ShortText = Annotated[str, StringConstraints(min_length=1, max_length=60), AfterValidator(_line)]
DocumentNumber = Annotated[str, StringConstraints(min_length=3, max_length=30, pattern=r"^[A-Z0-9][A-Z0-9 /-]*$")]


class ExpectedRow(BaseModel):
    """One person on a manifest, with the validators of ``RegisterArrival`` for the fields they share."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name
    family_name: Name
    sex: Sex
    date_of_birth: date | None = None
    estimated_age: int | None = Field(default=None, ge=0, le=120)
    phone_numbers: list[PersonPhone] = Field(default_factory=list, max_length=5)
    document_number: DocumentNumber | None = None
    place_of_origin: PlaceName | None = None
    household_ref: ShortText | None = None
    relationship: ShortText | None = None
    destination_region: str | None = None

    @field_validator("phone_numbers")
    @classmethod
    def _distinct_phones(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_past(cls, value: date | None, info: ValidationInfo) -> date | None:
        today = (info.context or {}).get("today")
        if value is not None and today is not None and value > today:
            raise ValueError("date of birth cannot be in the future")
        if value is not None and value < BIRTH_FLOOR:
            raise ValueError("date of birth is before 1900")
        return value

    @field_validator("destination_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value not in regions():
            raise ValueError(f"unknown region code; expected one of {', '.join(sorted(regions()))}")
        return value

    @model_validator(mode="after")
    def _age_known(self) -> "ExpectedRow":
        if self.date_of_birth is None and self.estimated_age is None:
            raise ValueError("give a date of birth or, when it is unknown, an estimated age")
        return self


class CellError(ValueError):
    """A cell that cannot be read as its field's type (reported like a validation error)."""


def _sex(text: str) -> str:
    key = fold(text)
    for sex, words in _SEXES.items():
        if key in words:
            return sex.value
    if text.upper() in Sex.__members__:
        return text.upper()
    raise CellError("not a sex; write M or F (H or F, Masculin or Féminin, Male or Female)")


def _birth_date(cell: Any, text: str) -> date:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise CellError("not a date; write it as DD/MM/YYYY or YYYY-MM-DD")


def _age(text: str) -> int:
    match = _AGE.match(text.strip().lower())
    if not match:
        raise CellError("not an age; write a number of years")
    return int(match.group(1))


def _region(text: str) -> str:
    if text.isdigit():
        return text.zfill(2)
    named = {fold(name): code for code, name in regions().items()}
    return named.get(fold(text), text)


def _cell_value(target: ManifestField, cell: Any, text: str) -> Any:
    if target == ManifestField.SEX:
        return _sex(text)
    if target == ManifestField.DATE_OF_BIRTH:
        return _birth_date(cell, text)
    if target == ManifestField.ESTIMATED_AGE:
        return _age(text)
    if target == ManifestField.PHONE:
        return [p for p in _PHONE_SPLIT.split(text) if p]
    if target == ManifestField.DOCUMENT_NUMBER:
        return " ".join(text.upper().split())
    if target == ManifestField.DESTINATION_REGION:
        return _region(text)
    return text


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def read_row(number: int, cells: list[Any], cols: Columns, today: date
             ) -> tuple[ExpectedRow | None, list[dict[str, Any]]]:
    """One row: the person it describes, or every problem in it (each naming row, column and field)."""
    data: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for index, target in cols.by_index.items():
        cell = cells[index] if index < len(cells) else None
        text = _text(cell)
        if not text:
            continue
        row_field = ROW_FIELD[target]
        try:
            value = _cell_value(target, cell, text)
        except CellError as exc:
            problems.append(_problem(number, cols.headers[index], row_field, str(exc)))
            continue
        if target == ManifestField.PHONE:
            data.setdefault(row_field, []).extend(value)
        else:
            data[row_field] = value
    if not {"date_of_birth", "estimated_age"} & (set(data) | {p["field"] for p in problems}):
        row_field = "date_of_birth" if cols.column_of("date_of_birth") else "estimated_age"
        problems.append(_problem(number, cols.column_of(row_field), row_field,
                                 "give a date of birth or, when it is unknown, an estimated age"))
    failed = {p["field"] for p in problems}
    try:
        row = ExpectedRow.model_validate(data, context={"today": today})
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            row_field = str(error["loc"][0]) if error["loc"] else None
            if row_field in failed:
                continue  # already named by its cell
            if row_field is None:  # the model's own rule: no date of birth nor age
                row_field = "date_of_birth" if cols.column_of("date_of_birth") else "estimated_age"
            reason = "missing" if error["type"] == "missing" else _reason(error["msg"])
            problems.append(_problem(number, cols.column_of(row_field), row_field, reason))
        return None, problems
    if problems:
        return None, problems
    return row, []


def fingerprint(row: ExpectedRow) -> str:
    """The same person written the same way gives the same key, whatever the case, accents, spacing or
    order of phone numbers: a corrected file's rows that were already read are recognised."""
    parts = [fold(row.given_name), fold(row.family_name), row.sex.value,
             row.date_of_birth.isoformat() if row.date_of_birth else "", str(row.estimated_age or ""),
             ",".join(sorted(row.phone_numbers)), (row.document_number or "").replace(" ", ""),
             fold(row.place_of_origin or ""), fold(row.household_ref or ""), fold(row.relationship or ""),
             row.destination_region or ""]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass
class Manifest:
    """A file read: its valid rows (number, person, fingerprint), every problem, and what was ignored."""

    rows: list[tuple[int, ExpectedRow, str]]
    problems: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    mapping: list[dict[str, str]]
    rows_read: int
    rejected_rows: list[int]


def read_manifest(content: bytes, explicit: dict[str, ManifestField], today: date) -> Manifest:
    """Read and check a whole file. Raises BadInput (field ``file``) for what makes the file unreadable."""
    rows = table(content)
    cols = columns(rows, explicit)
    data_rows = [(n, cells) for n, cells in rows if n > cols.header_row]
    if len(data_rows) > MAX_MANIFEST_ROWS:
        raise BadInput(f"The file has more than {MAX_MANIFEST_ROWS} rows; split it.", field="file")
    kept: list[tuple[int, ExpectedRow, str]] = []
    problems: list[dict[str, Any]] = []
    rejected: list[int] = []
    for number, cells in data_rows:
        row, found = read_row(number, cells, cols, today)
        if row is None:
            problems += found
            rejected.append(number)
        else:
            kept.append((number, row, fingerprint(row)))
    return Manifest(kept, problems, cols.warnings, cols.used(), len(data_rows), rejected)


def explicit_mapping(pairs: Iterable[tuple[str, ManifestField]]) -> dict[str, ManifestField]:
    return {column: f for column, f in pairs}
