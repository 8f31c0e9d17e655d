"""The directory as Open Referral HSDS 3 documents, for the gateway's read-only ``/hsds`` API.

HSDS wants UUIDs for every object: services and locations have theirs; an organisation's (the
platform's short id, e.g. ``dgme``) and those of the objects Segin folds into a service (its phone,
capacity, service areas, schedules…) are UUIDv5 names under one Segin namespace, so they are stable
across reads and replicas. HSDS fields are never null: an unknown value is left out. Who sees which
service is the directory's rule (``directory.visible``): the documents are built from its views.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import DirectoryServiceRef, HsdsPageRequest, HsdsRef
from contracts.reference import OrganisationType, ServiceCategory, regions
from contracts.replies import DirectoryServiceView, HsdsDocument, HsdsPage
from kernel.errors import NotFound
from kernel.tokens import Principal
from services.referral import directory
from services.referral import directory_store as ds

HSDS_VERSION = "3.1"
NAMESPACE = uuid.UUID("6f1d7c2a-3b7e-5c55-9a51-5e61c0d1a3b8")  # Segin's HSDS names (never change it)
TAXONOMY = "Segin service categories"
COUNTRY = "ML"
NO_SUCH_ORGANIZATION = "No such organization."

CATEGORY_LABELS: dict[ServiceCategory, tuple[str, str]] = {
    ServiceCategory.RECEPTION: ("Accueil", "Reception"),
    ServiceCategory.FOOD: ("Alimentation", "Food"),
    ServiceCategory.SHELTER: ("Hébergement temporaire", "Temporary shelter"),
    ServiceCategory.NON_FOOD_ITEMS: ("Articles non alimentaires", "Non-food items"),
    ServiceCategory.HEALTH_CARE: ("Soins de santé", "Health care"),
    ServiceCategory.ONWARD_TRANSPORT: ("Transport vers la destination", "Onward transport"),
    ServiceCategory.CASH_ALLOWANCE: ("Allocation en espèces", "Cash allowance"),
    ServiceCategory.CHILD_PROTECTION: ("Protection de l'enfant", "Child protection"),
    ServiceCategory.GBV_RESPONSE: ("Prise en charge des VBG", "GBV response"),
    ServiceCategory.COUNTER_TRAFFICKING: ("Lutte contre la traite", "Counter-trafficking"),
    ServiceCategory.FAMILY_TRACING: ("Recherche familiale", "Family tracing"),
    ServiceCategory.LEGAL_AID: ("Aide juridique", "Legal aid"),
    ServiceCategory.CIVIL_DOCUMENTATION: ("Documentation civile", "Civil documentation"),
    ServiceCategory.INTERNATIONAL_PROTECTION: ("Protection internationale", "International protection"),
    ServiceCategory.MHPSS_COUNSELLING: ("Soutien psychosocial", "MHPSS counselling"),
    ServiceCategory.CLINICAL_MENTAL_HEALTH: ("Santé mentale clinique", "Clinical mental health"),
    ServiceCategory.COMMUNITY_ACTIVITIES: ("Activités communautaires", "Community activities"),
    ServiceCategory.BUSINESS_START_UP: ("Création d'entreprise", "Business start-up"),
    ServiceCategory.JOB_PLACEMENT: ("Placement en emploi", "Job placement"),
    ServiceCategory.VOCATIONAL_TRAINING: ("Formation professionnelle", "Vocational training"),
    ServiceCategory.FINANCIAL_COUNSELLING: ("Conseil financier", "Financial counselling"),
    ServiceCategory.CASH_OR_IN_KIND: ("Aide en espèces ou en nature", "Cash or in-kind support"),
    ServiceCategory.MICROCREDIT: ("Microcrédit", "Microcredit"),
    ServiceCategory.SAVINGS_GROUPS: ("Groupes d'épargne", "Savings groups"),
    ServiceCategory.HOUSING: ("Logement", "Housing"),
    ServiceCategory.EDUCATION: ("Éducation", "Education"),
    ServiceCategory.SOCIAL_PROTECTION: ("Protection sociale", "Social protection"),
}
ORGANISATION_TYPES = {
    OrganisationType.STATE: "Service de l'État", OrganisationType.NGO: "Organisation non gouvernementale",
    OrganisationType.INTERNATIONAL: "Organisation internationale", OrganisationType.DIASPORA: "Association de la diaspora",
    OrganisationType.SERVICE_PROVIDER: "Prestataire de services",
}
DAYS_FR = {"MO": "lun.", "TU": "mar.", "WE": "mer.", "TH": "jeu.", "FR": "ven.", "SA": "sam.", "SU": "dim."}


def hsds_id(*parts: str) -> str:
    """The stable UUID of an object Segin has no UUID for (an organisation, a folded-in part of a service)."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def organization_uuid(org_id: str) -> str:
    return hsds_id("organization", org_id)


def _present(doc: dict[str, Any]) -> dict[str, Any]:
    """HSDS fields are typed strings, numbers or arrays, never null: leave unknowns out."""
    return {k: v for k, v in doc.items() if v is not None}


def _iso(value: Any) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def organization_doc(org: dict[str, Any]) -> dict[str, Any]:
    kind = ORGANISATION_TYPES.get(org["org_type"], org["org_type"])  # StrEnum keys match their strings
    return _present({
        "id": organization_uuid(org["id"]), "name": org["name"], "alternate_name": org["id"],
        "description": org.get("description") or f"{org['name']} — {kind}.",
        "email": org.get("email"), "website": org.get("website"),
    })


def eligibility_text(view: DirectoryServiceView) -> str | None:
    """Who may use the service, in words (French first), from the structured eligibility."""
    parts = []
    if view.minimum_age is not None or view.maximum_age is not None:
        low = view.minimum_age if view.minimum_age is not None else 0
        parts.append(f"Âge : {low}–{view.maximum_age} ans" if view.maximum_age is not None else f"Âge : {low} ans et plus")
    if view.sexes:
        parts.append("Sexe : " + ", ".join(s.value for s in view.sexes))
    if view.vulnerabilities:
        parts.append("Vulnérabilités : " + ", ".join(v.value for v in view.vulnerabilities))
    return "; ".join(parts) + "." if parts else None


def service_areas(view: DirectoryServiceView) -> list[dict[str, Any]]:
    if not view.regions:
        return [{"id": hsds_id("service_area", view.id, "national"), "service_id": view.id, "name": "Mali",
                 "description": "Couverture nationale / National coverage."}]
    return [{"id": hsds_id("service_area", view.id, code), "service_id": view.id,
             "name": regions().get(code, code), "description": f"Région (code CT {code})."} for code in view.regions]


def service_at_locations(view: DirectoryServiceView, org_uuid: str) -> list[dict[str, Any]]:
    out = []
    for place in view.locations:
        location = _present({"id": place.id, "location_type": "physical", "organization_id": org_uuid,
                             "name": place.name, "latitude": place.latitude, "longitude": place.longitude})
        if place.address and place.city:
            region_name = regions().get(place.region, "") if place.region else ""
            location["addresses"] = [_present({
                "id": hsds_id("address", place.id), "location_id": place.id, "address_1": place.address,
                "city": place.city, "region": region_name or None, "state_province": region_name,
                "postal_code": "",  # Mali has no postal codes; HSDS requires the field
                "country": COUNTRY, "address_type": "physical"})]
        out.append({"id": hsds_id("service_at_location", view.id, place.id), "service_id": view.id,
                    "location_id": place.id, "location": location})
    return out


def schedules(view: DirectoryServiceView) -> list[dict[str, Any]]:
    return [{"id": hsds_id("schedule", view.id, str(n)), "service_id": view.id, "freq": "WEEKLY",
             "byday": ",".join(d.value for d in h.days), "opens_at": f"{h.opens_at}Z", "closes_at": f"{h.closes_at}Z",
             "description": f"{', '.join(DAYS_FR[d.value] for d in h.days)} {h.opens_at}–{h.closes_at} (heure de Bamako)"}
            for n, h in enumerate(view.hours)]


def capacities(view: DirectoryServiceView) -> list[dict[str, Any]]:
    capacity = view.capacity
    if capacity is None or capacity.available is None or capacity.updated_at is None:
        return []
    unit = "bed" if view.category in (ServiceCategory.SHELTER, ServiceCategory.HOUSING) else "place"
    return [_present({
        "id": hsds_id("service_capacity", view.id), "service_id": view.id, "available": capacity.available,
        "maximum": capacity.maximum, "updated": _iso(capacity.updated_at),
        "unit": {"id": hsds_id("unit", unit), "name": unit, "identifier": unit}})]


def category_attributes(view: DirectoryServiceView) -> list[dict[str, Any]]:
    fr, en = CATEGORY_LABELS[view.category]
    term = {"id": hsds_id("taxonomy_term", view.category.value), "code": view.category.value, "name": fr,
            "description": en, "taxonomy": TAXONOMY, "language": "fr",
            "taxonomy_detail": {"id": hsds_id("taxonomy", TAXONOMY), "name": TAXONOMY, "version": "1",
                                "description": "Catégories de services du réseau national de référencement (Segin)."}}
    return [{"id": hsds_id("attribute", view.id, "category"), "link_id": view.id, "link_entity": "service",
             "link_type": "service_category", "taxonomy_term_id": term["id"], "value": view.category.value,
             "taxonomy_term": term}]


def service_doc(view: DirectoryServiceView, org: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """An HSDS ``service``: its one-to-one fields and organization (a list entry), or fully nested (``full``)."""
    org_uuid = organization_uuid(view.organization_id)
    doc = _present({
        "id": view.id, "organization_id": org_uuid, "name": view.name_fr, "alternate_name": view.name_en,
        "description": view.description_fr or view.name_fr, "url": view.url, "email": view.email,
        "status": view.status.value, "eligibility_description": eligibility_text(view),
        "minimum_age": view.minimum_age, "maximum_age": view.maximum_age, "last_modified": _iso(view.updated_at),
        "organization": organization_doc(org),
    })
    if full:
        doc |= {
            "phones": [{"id": hsds_id("phone", view.id), "service_id": view.id, "number": view.phone,
                        "type": "voice"}] if view.phone else [],
            "schedules": schedules(view),
            "service_areas": service_areas(view),
            "service_at_locations": service_at_locations(view, org_uuid),
            "languages": [{"id": hsds_id("language", view.id, "fr"), "service_id": view.id, "name": "French",
                           "code": "fr"}],
            "capacities": capacities(view),
            "attributes": category_attributes(view),
        }
    return doc


def page_of(contents: list[dict[str, Any]], total: int, request: HsdsPageRequest) -> HsdsPage:
    total_pages = math.ceil(total / request.per_page)
    return HsdsPage(total_items=total, total_pages=total_pages, page_number=request.page, size=len(contents),
                    first_page=request.page == 1, last_page=request.page >= total_pages, empty=not contents,
                    contents=contents)


def _platform_org(orgs: list[dict[str, Any]], given: str) -> dict[str, Any] | None:
    """An organisation named by its HSDS UUID or its platform id."""
    return next((o for o in orgs if given in (o["id"], organization_uuid(o["id"]))), None)


# --- handlers -------------------------------------------------------------------------------------


async def services(pool: AsyncConnectionPool, principal: Principal, request: HsdsPageRequest) -> HsdsPage:
    async with pool.connection() as conn:
        orgs = await ds.all_organizations(conn)
        org_filter = None
        if request.organization_id:
            found = _platform_org(orgs, request.organization_id)
            if found is None:
                return page_of([], 0, request)
            org_filter = found["id"]
        total, rows = await ds.page_services(conn, directory.viewer(principal),
                                             (request.page - 1) * request.per_page, request.per_page, org_filter)
        places = await ds.locations_of(conn, [r["id"] for r in rows])
    by_id = {o["id"]: o for o in orgs}
    views = [directory.service_view(r, places[r["id"]], principal) for r in rows]
    return page_of([service_doc(v, by_id[v.organization_id], full=False) for v in views], total, request)


async def service(pool: AsyncConnectionPool, principal: Principal, ref: HsdsRef) -> HsdsDocument:
    view = await directory.service(pool, principal, DirectoryServiceRef(id=ref.id))
    async with pool.connection() as conn:
        org = await ds.organization(conn, view.organization_id)
    assert org is not None
    return HsdsDocument(service_doc(view, org, full=True))


async def organizations(pool: AsyncConnectionPool, principal: Principal, request: HsdsPageRequest) -> HsdsPage:
    async with pool.connection() as conn:
        total, rows = await ds.page_organizations(conn, directory.viewer(principal),
                                                  (request.page - 1) * request.per_page, request.per_page)
    return page_of([organization_doc(r) for r in rows], total, request)


async def organization(pool: AsyncConnectionPool, principal: Principal, ref: HsdsRef) -> HsdsDocument:
    """One organization with the services the caller may see (list entries, as the HSDS API nests them)."""
    async with pool.connection() as conn:
        org = _platform_org(await ds.all_organizations(conn), ref.id)
        if org is None or not await ds.listed_organization(conn, directory.viewer(principal), org["id"]):
            raise NotFound(NO_SUCH_ORGANIZATION, field="id")
        _, rows = await ds.page_services(conn, directory.viewer(principal), 0, 1000, org["id"])
        places = await ds.locations_of(conn, [r["id"] for r in rows])
    views = [directory.service_view(r, places[r["id"]], principal) for r in rows]
    return HsdsDocument(organization_doc(org) | {"services": [service_doc(v, org, full=False) for v in views]})
