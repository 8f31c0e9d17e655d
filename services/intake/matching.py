"""People already known: how alike two people's identities are, free of I/O (decision record 0022).

Names are compared token by token whatever their order (given and family names swapped, several
given names): each token is reduced to a key — accents dropped, a phonetic reduction for the ways
Malian names are written in French and Bambara spelling (ou/u, c/k/s, y/i, di/dj/j, ch/sh/s,
doubled letters), then the variants table (``name_variants.csv``: Mahamadou → Mohamed). Equal keys
are a variant; different keys are compared with Jaro-Winkler (typos). Dates of birth, estimated
ages (a tolerance), phone numbers (E.164), place of origin, destination region and sex add or take
away evidence. The score is 0..1 with its reasons, as codes and as words for the agent.

Blocking keys (``blocking_keys``) are what the store indexes per case so that finding candidates
among a million cases reads a few hundred rows: pairs of name-key prefixes or suffixes with a birth
year, and phone numbers.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from itertools import combinations
from pathlib import Path

from rapidfuzz.distance import JaroWinkler

VARIANTS_FILE = Path(__file__).with_name("name_variants.csv")

THRESHOLD = 0.70  # a candidate at or above this is offered (and recorded for the steward when unreadable)
YEAR_TOLERANCE = 2  # birth years this far apart still block together (estimated ages are rough)
MAX_NAME_TOKENS = 4  # beyond four names, the first four (bounded work for a long name)
TYPO_SIMILARITY = 0.84  # Jaro-Winkler of two keys at or above this: a spelling mistake

# Weights (decision record 0022): the name carries most of the score; the other facts confirm it.
W_NAME = 0.55
W_SAME_BIRTH_DATE = 0.30
W_BIRTH_DATE_CLOSE = 0.22
W_AGE = {0: 0.20, 1: 0.18, 2: 0.15, 3: 0.06}  # birth years this far apart (from a date or an estimated age)
W_AGE_FAR = -0.25  # more than AGE_FAR_YEARS apart
AGE_FAR_YEARS = 5
W_PHONE = 0.25
W_PLACE = 0.06
W_REGION = 0.04
W_SEX_DIFFERS = -0.35
EXTRA_NAME_PENALTY = 0.04  # per name one of them has and the other not (a second given name)


@dataclass(frozen=True)
class Person:
    """The identity facts compared; ``seen_on`` is the day an estimated age was given (the arrival)."""

    given_name: str
    family_name: str
    sex: str | None = None
    date_of_birth: date | None = None
    estimated_age: int | None = None
    seen_on: date | None = None
    phone_numbers: tuple[str, ...] = ()
    place_of_origin: str | None = None
    destination_region: str | None = None

    @property
    def birth_year(self) -> int | None:
        if self.date_of_birth is not None:
            return self.date_of_birth.year
        if self.estimated_age is not None and self.seen_on is not None:
            return self.seen_on.year - self.estimated_age
        return None


@dataclass(frozen=True)
class Reason:
    code: str  # NAME_SAME, NAME_VARIANT, NAME_TYPO, NAME_ORDER_SWAPPED, SAME_BIRTH_DATE, ...
    text: str  # for the agent, e.g. "Mahamadou ~ Mohamed"


@dataclass(frozen=True)
class Match:
    score: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def codes(self) -> list[str]:
        return sorted({r.code for r in self.reasons})


# --- names --------------------------------------------------------------------------------------

_NOT_LETTER = re.compile(r"[^a-z]+")
_APOSTROPHES = re.compile(r"['’`ʼ]")


def tokens(name: str) -> list[str]:
    """Lower-case ASCII words of a name: accents dropped, apostrophes joined (N'Diaye → ndiaye)."""
    return list(_tokens(name))


@lru_cache(maxsize=65536)
def _tokens(name: str) -> tuple[str, ...]:
    decomposed = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", name.casefold()))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return tuple(t for t in _NOT_LETTER.split(ascii_only) if t)


# Ordered rewrites of the phonetic reduction: each applies to the result of the previous ones.
_REWRITES: list[tuple[re.Pattern[str], str]] = [(re.compile(p), r) for p, r in [
    (r"dj", "j"), (r"di(?=[aeou])", "j"),  # Djénéba/Jeneba, Diarra/Jara, Diallo/Jallo
    (r"tch", "c"), (r"[cs]h", "s"),  # Aïchata/Aïssata, Cheick/Sheikh
    (r"ph", "f"), (r"qu", "k"), (r"q", "k"), (r"ck", "k"),
    (r"c(?=[eiy])", "s"), (r"c", "k"),  # Cissé/Sisse, Coulibaly/Kulibali
    (r"x", "ks"),
    (r"gu(?=[ei])", "g"),
    (r"ou", "u"), (r"w", "u"), (r"y", "i"),  # Moussa/Musa, Ouattara/Wattara, Keyta/Keita
    (r"([bdgkt])h", r"\1"), (r"(?<=.)h$", ""),  # Bah/Ba; an h between vowels stays (Mahamadou)
    (r"(.)\1+", r"\1"),  # doubled letters (Diarra, Sissoko)
]]


def phonetic(token: str) -> str:
    """A token's sound as it is spelt several ways in Mali (``token`` from ``tokens``)."""
    for pattern, replacement in _REWRITES:
        token = pattern.sub(replacement, token)
    return token


@cache
def variants() -> dict[str, str]:
    """Phonetic form of each variant → its group's key (the phonetic form of the group's first name)."""
    table: dict[str, str] = {}
    with VARIANTS_FILE.open(encoding="utf-8") as handle:
        for row in csv.reader(line for line in handle if line.strip() and not line.startswith("#")):
            names = [phonetic("".join(tokens(n))) for n in row if n.strip()]
            for name in names:
                if name in table and table[name] != names[0]:
                    raise ValueError(f"{VARIANTS_FILE.name}: {name} is in two groups")
                table[name] = names[0]
    return table


@lru_cache(maxsize=65536)
def name_key(token: str) -> str:
    """A name token's key: equal keys are one name however spelt."""
    sound = phonetic(token)
    return variants().get(sound, sound)


def _name_tokens(person: Person) -> tuple[list[str], list[str]]:
    return tokens(person.given_name)[:MAX_NAME_TOKENS], tokens(person.family_name)[:MAX_NAME_TOKENS]


@lru_cache(maxsize=262144)
def _token_similarity(a: str, b: str) -> tuple[float, str]:
    if a == b:
        return 1.0, "NAME_SAME"
    ka, kb = name_key(a), name_key(b)
    if ka == kb:
        return 0.95, "NAME_VARIANT"
    similarity = JaroWinkler.similarity(ka, kb)
    if similarity >= TYPO_SIMILARITY:
        return 0.9 * similarity, "NAME_TYPO"
    return 0.6 * similarity, "NAME_DIFFERS"


_WORDS = re.compile(r"[\s\-‐-―/,.;()]+")


@lru_cache(maxsize=65536)
def spelt(name: str) -> tuple[str, ...]:
    """The words of a name as written (accents kept), one per token of ``tokens``: what reasons show."""
    words: list[str] = []
    for word in _WORDS.split(name):
        found = tokens(word)
        words += [word] if len(found) == 1 else [t.capitalize() for t in found]
    return tuple(words)


def name_similarity(a: Person, b: Person) -> tuple[float, list[Reason]]:
    """0..1 over the names whatever their order; the reasons say which names matched how."""
    value, reasons = _names_similarity(a.given_name, a.family_name, b.given_name, b.family_name)
    return value, list(reasons)


@lru_cache(maxsize=65536)  # common names come back again and again in one block
def _names_similarity(a_given_name: str, a_family_name: str, b_given_name: str, b_family_name: str
                      ) -> tuple[float, tuple[Reason, ...]]:
    a_given, a_family = tokens(a_given_name)[:MAX_NAME_TOKENS], tokens(a_family_name)[:MAX_NAME_TOKENS]
    b_given, b_family = tokens(b_given_name)[:MAX_NAME_TOKENS], tokens(b_family_name)[:MAX_NAME_TOKENS]
    left = [(t, "given") for t in a_given] + [(t, "family") for t in a_family]
    right = [(t, "given") for t in b_given] + [(t, "family") for t in b_family]
    shown_left = [*spelt(a_given_name)[:MAX_NAME_TOKENS], *spelt(a_family_name)[:MAX_NAME_TOKENS]]
    shown_right = [*spelt(b_given_name)[:MAX_NAME_TOKENS], *spelt(b_family_name)[:MAX_NAME_TOKENS]]
    if len(shown_left) != len(left) or len(shown_right) != len(right):  # never expected; then the keys' words
        shown_left, shown_right = [t.capitalize() for t, _ in left], [t.capitalize() for t, _ in right]
    if not left or not right:
        return 0.0, ()
    scored = sorted(((*_token_similarity(x, y), i, j) for i, (x, _) in enumerate(left)
                     for j, (y, _) in enumerate(right)), reverse=True)
    used_left: set[int] = set()
    used_right: set[int] = set()
    pairs: list[tuple[float, str, int, int]] = []
    for similarity, code, i, j in scored:  # greedy assignment, best pairs first
        if i not in used_left and j not in used_right:
            used_left.add(i)
            used_right.add(j)
            pairs.append((similarity, code, i, j))
    matched = min(len(left), len(right))
    value = sum(p[0] for p in pairs) / matched - EXTRA_NAME_PENALTY * abs(len(left) - len(right))
    reasons: list[Reason] = []
    for similarity, code, i, j in sorted(pairs, key=lambda p: p[2]):
        x, y = shown_left[i], shown_right[j]
        if code == "NAME_SAME":
            reasons.append(Reason(code, x if x == y else f"{x} = {y}"))  # Keïta = Keita
        elif code in ("NAME_VARIANT", "NAME_TYPO"):
            reasons.append(Reason(code, f"{x} ~ {y}"))
    swapped = [(i, j) for s, c, i, j in pairs if c != "NAME_DIFFERS" and left[i][1] != right[j][1]]
    if swapped:
        reasons.append(Reason("NAME_ORDER_SWAPPED", "given and family names in another order"))
    return max(0.0, min(1.0, value)), tuple(reasons)


# --- the whole identity -------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def _same_place(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    ka = " ".join(name_key(t) for t in tokens(a))
    kb = " ".join(name_key(t) for t in tokens(b))
    return bool(ka) and (ka == kb or JaroWinkler.similarity(ka, kb) >= 0.92)


def score(a: Person, b: Person) -> Match:
    """How likely ``a`` and ``b`` are one person: 0..1, with every reason that counted."""
    name, reasons = name_similarity(a, b)
    total = W_NAME * name
    if a.date_of_birth and b.date_of_birth:
        if a.date_of_birth == b.date_of_birth:
            total += W_SAME_BIRTH_DATE
            reasons.append(Reason("SAME_BIRTH_DATE", a.date_of_birth.isoformat()))
        elif a.date_of_birth.year == b.date_of_birth.year or abs((a.date_of_birth - b.date_of_birth).days) <= 31 \
                or (a.date_of_birth.month, a.date_of_birth.day) == (b.date_of_birth.day, b.date_of_birth.month):
            total += W_BIRTH_DATE_CLOSE
            reasons.append(Reason("BIRTH_DATE_CLOSE", f"{a.date_of_birth.isoformat()} ~ {b.date_of_birth.isoformat()}"))
        else:
            total += _age_weight(a, b, reasons)
    else:
        total += _age_weight(a, b, reasons)
    shared = sorted(set(a.phone_numbers) & set(b.phone_numbers))
    if shared:
        total += W_PHONE
        reasons.append(Reason("SAME_PHONE", shared[0]))
    if _same_place(a.place_of_origin, b.place_of_origin):
        total += W_PLACE
        reasons.append(Reason("SAME_PLACE_OF_ORIGIN", str(b.place_of_origin)))
    if a.destination_region and a.destination_region == b.destination_region:
        total += W_REGION
        reasons.append(Reason("SAME_DESTINATION_REGION", a.destination_region))
    if a.sex and b.sex and a.sex != b.sex:
        total += W_SEX_DIFFERS
        reasons.append(Reason("SEX_DIFFERS", f"{a.sex} / {b.sex}"))
    return Match(round(max(0.0, min(1.0, total)), 3), tuple(reasons))


def _age_weight(a: Person, b: Person, reasons: list[Reason]) -> float:
    ya, yb = a.birth_year, b.birth_year
    if ya is None or yb is None:
        return 0.0
    apart = abs(ya - yb)
    if apart in W_AGE:
        reasons.append(Reason("AGE_CLOSE", f"born about {ya} / {yb}"))
        return W_AGE[apart]
    if apart > AGE_FAR_YEARS:
        reasons.append(Reason("AGE_FAR", f"born about {ya} / {yb}"))
        return W_AGE_FAR
    return 0.0


# --- blocking -----------------------------------------------------------------------------------

def _pairs(keys: Iterable[str]) -> list[tuple[str, str]]:
    distinct = sorted(set(keys))
    if len(distinct) == 1:
        return [(distinct[0], distinct[0])]
    return list(combinations(distinct, 2))


_VOWELS = re.compile(r"[aeiou]+")


@lru_cache(maxsize=65536)
def skeleton(key: str) -> str:
    """A name key's consonants, doubled ones once: a vowel mistyped, dropped or moved leaves it alone."""
    return re.sub(r"(.)\1+", r"\1", _VOWELS.sub("", key)) or key


def name_blocks(person: Person) -> list[str]:
    """Per pair of name keys (any order): their 3-letter prefixes, their 3-letter suffixes and their
    consonant skeletons, so that a typo in one place of a name still meets the others."""
    given, family = _name_tokens(person)
    keys = [name_key(t) for t in given + family]
    blocks: set[str] = set()
    for a, b in _pairs(keys):
        blocks.add("p:" + "|".join(sorted((a[:3], b[:3]))))
        blocks.add("s:" + "|".join(sorted((a[0] + a[-3:], b[0] + b[-3:]))))
        blocks.add(f"k:{a}|{skeleton(b)}")  # a typo in b, a spelt as registered
        blocks.add(f"k:{b}|{skeleton(a)}")
    return sorted(blocks)


def blocking_keys(person: Person) -> list[str]:
    """What a case is indexed under: each name block with its birth year, and each phone number."""
    year = person.birth_year
    keys = [f"{block}:{year}" for block in name_blocks(person)] if year is not None else []
    return keys + [f"t:{phone}" for phone in person.phone_numbers]


def lookup_keys(person: Person) -> list[str]:
    """The keys to look a person up by: each name block within ``YEAR_TOLERANCE`` years, and phones."""
    year = person.birth_year
    keys = [f"{block}:{y}" for block in name_blocks(person)
            for y in range(year - YEAR_TOLERANCE, year + YEAR_TOLERANCE + 1)] if year is not None else []
    return keys + [f"t:{phone}" for phone in person.phone_numbers]


def key_of_name(name: str) -> str:
    """The keys of a whole name, in order (``Fatoumata Binta`` → ``fatumata binta``): for tests and tools."""
    return " ".join(name_key(t) for t in tokens(name))
