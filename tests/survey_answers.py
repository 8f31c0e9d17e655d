"""The survey answers the follow-up tests share, written once."""

from __future__ import annotations

# One follow-up visit answering the 15 RSS indicators: the visit tests/unit/test_survey_instrument.py
# scores by hand (the comments are each answer's score under version 1, and version 2 where it differs).
RSS_VISIT: dict[str, str] = {
    "ECO_INCOME_SOURCE": "IRREGULAR",       # 1/2
    "ECO_WORK_ACCESS": "YES",               # 1
    "ECO_DEBT": "MANAGEABLE",               # 1/2 in v1, 3/4 in v2
    "ECO_FOOD_SECURITY": "SOMETIMES",       # 1/2
    "ECO_SATISFACTION": "SATISFIED",        # 2/3
    "SOC_HOUSING": "ADEQUATE",              # 1
    "SOC_EDUCATION": "PARTLY",              # 1/2
    "SOC_JUSTICE_DOCUMENTS": "NEITHER",     # 0
    "SOC_HEALTH_CARE": "WITH_DIFFICULTY",   # 1/2
    "SOC_DRINKING_WATER": "ALWAYS",         # 1
    "PSY_BELONGING": "STRONGLY",            # 1
    "PSY_SAFETY": "SOMETIMES",              # 1/2
    "PSY_DISCRIMINATION": "NEVER",          # 1
    "PSY_DISTRESS": "DISTRESS_SUPPORTED",   # 1/2
    "PSY_REMIGRATION": "BY_NECESSITY",      # 0
}
