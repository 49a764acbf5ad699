"""Demo data of the members service for both demo cooperatives, loaded through its HTTP API.

Kopsyah BMI (Tangerang) measures B40 by household electricity (the default rule); Koperasi BAIK (Bogor)
chose household income bands. Each gets centres, groups (majelis / kelompok), members with a baseline
WASH survey (and a follow-up for some), and promotion and triggering (pemicuan) sessions with attendance
and leads. The people are invented; NIKs and phone numbers only have the right shape.

Loading is idempotent, so the run command can call it at every start: creations carry Idempotency-Keys
(members are keyed by their member number), codes that
exist already (409) are left as they are, and corrections that change nothing append nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from deploy.local.demo import DEMO_MEMBERS, key_for
from shared.tenancy import Role

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"

SETTINGS: dict[str, dict[str, Any]] = {
    BMI: {"b40_method": "electricity", "b40_electricity": ["none", "450", "900_subsidised"],
          "b40_income_bands": ["below_1m", "1m_to_2m", "2m_to_3m"], "min_tenure_months": 12,
          "max_days_overdue": 30, "require_registered_groups": False},
    BAIK: {"b40_method": "income_band", "b40_electricity": ["none", "450", "900_subsidised"],
           "b40_income_bands": ["below_1m", "1m_to_2m", "2m_to_3m"], "min_tenure_months": 12,
           "max_days_overdue": 30, "require_registered_groups": False},
}

CENTRES: dict[str, list[dict[str, Any]]] = {
    BMI: [
        {"centre_id": "pusat-pasirjaya", "name": "Pusat Pasir Jaya", "branch": "Cikupa", "village": "Pasir Jaya",
         "district": "Cikupa", "opened_on": "2018-02-05"},
        {"centre_id": "pusat-bitungjaya", "name": "Pusat Bitung Jaya", "branch": "Cikupa", "village": "Bitung Jaya",
         "district": "Cikupa", "opened_on": "2018-09-17"},
    ],
    BAIK: [
        {"centre_id": "pusat-ciampea", "name": "Pusat Ciampea", "branch": "Ciampea", "village": "Cibanteng",
         "district": "Ciampea", "opened_on": "2019-03-04"},
    ],
}

GROUPS: dict[str, list[dict[str, Any]]] = {
    BMI: [
        {"group_id": "majelis-07", "name": "Majelis Mawar", "centre_id": "pusat-pasirjaya", "meeting_day": "tuesday",
         "formed_on": "2018-03-06"},
        {"group_id": "majelis-08", "name": "Majelis Melati", "centre_id": "pusat-pasirjaya", "meeting_day": "thursday",
         "formed_on": "2019-01-10"},
        {"group_id": "majelis-12", "name": "Majelis Anggrek", "centre_id": "pusat-bitungjaya",
         "meeting_day": "wednesday", "formed_on": "2018-10-03"},
    ],
    BAIK: [
        {"group_id": "kelompok-3", "name": "Kelompok Sejahtera", "centre_id": "pusat-ciampea", "meeting_day": "monday",
         "formed_on": "2019-04-01"},
        {"group_id": "kelompok-5", "name": "Kelompok Berkah", "centre_id": "pusat-ciampea", "meeting_day": "friday",
         "formed_on": "2019-11-08"},
    ],
}

# more members beside deploy.local.demo.DEMO_MEMBERS (which other tests use as they are)
EXTRA_MEMBERS: dict[str, list[dict[str, Any]]] = {
    BMI: [
        {"member_number": "BMI-TGR-0005", "name": "Sri Wahyuni", "sex": "female", "joined_on": "2018-05-08",
         "household_size": 6, "group_id": "majelis-08", "village": "Pasir Jaya", "district": "Cikupa", "area": "rural",
         "phone": "081234567805", "nik": "3603125207790005", "electricity": "450", "programme_consent": True},
        {"member_number": "BMI-TGR-0006", "name": "Yuli Astuti", "sex": "female", "joined_on": "2023-02-14",
         "household_size": 4, "group_id": "majelis-08", "village": "Pasir Jaya", "district": "Cikupa", "area": "rural",
         "phone": "081234567806", "nik": "3603124911880006", "electricity": "900_subsidised", "programme_consent": True},
        {"member_number": "BMI-TGR-0007", "name": "Ratna Sari", "sex": "female", "joined_on": "2024-06-03",
         "household_size": 3, "group_id": "majelis-12", "village": "Bitung Jaya", "district": "Cikupa", "area": "urban",
         "phone": "081234567807", "nik": "3603126302950007", "electricity": "1300", "programme_consent": True},
        {"member_number": "BMI-TGR-0008", "name": "Ahmad Fauzi", "sex": "male", "joined_on": "2022-08-22",
         "household_size": 5, "group_id": "majelis-12", "village": "Bitung Jaya", "district": "Cikupa", "area": "urban",
         "phone": "081234567808", "nik": "3603121408820008", "electricity": "900_non_subsidised",
         "programme_consent": False},
    ],
    BAIK: [
        {"member_number": "BAIK-BGR-104", "name": "Neneng Hasanah", "sex": "female", "joined_on": "2019-06-17",
         "household_size": 5, "group_id": "kelompok-5", "village": "Cihideung Ilir", "district": "Ciampea",
         "area": "urban", "phone": "085712345604", "nik": "3201015506830004", "income_band": "1m_to_2m",
         "programme_consent": True},
        {"member_number": "BAIK-BGR-105", "name": "Imas Masitoh", "sex": "female", "joined_on": "2024-01-22",
         "household_size": 6, "group_id": "kelompok-3", "village": "Cibanteng", "district": "Ciampea", "area": "rural",
         "phone": "085712345605", "nik": "3201016010900005", "income_band": "below_1m", "programme_consent": True},
    ],
}

# the poverty proxy of the DEMO_MEMBERS (added by a correction, so their registration body stays as it was)
PROXIES: dict[str, dict[str, str]] = {
    "BMI-TGR-0001": {"electricity": "450"}, "BMI-TGR-0002": {"electricity": "900_subsidised"},
    "BMI-TGR-0003": {"electricity": "1300"}, "BMI-TGR-0004": {"electricity": "450"},
    "BAIK-BGR-101": {"income_band": "1m_to_2m"}, "BAIK-BGR-102": {"income_band": "below_1m"},
    "BAIK-BGR-103": {"income_band": "3m_to_5m"},
}

_WELL = {"source": "protected_dug_well", "on_premises": True, "available_when_needed": True}
_WELL_FAR = {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 15}
_TAP_FAR = {"source": "public_tap_standpipe", "round_trip_minutes": 40}
_REFILL = {"source": "packaged_water", "on_premises": True, "available_when_needed": True}
_PDAM = {"source": "piped_into_dwelling", "available_when_needed": True, "free_from_contamination": True}
_SPRING = {"source": "unprotected_spring", "on_premises": False, "round_trip_minutes": 25}
_CUBLUK = {"facility": "pit_latrine_without_slab", "shared": False}
_SHARED_TANK = {"facility": "flush_to_septic_tank", "shared": True, "excreta": "never_emptied"}
_TANK = {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}
_TANK_EMPTIED_IPLT = {"facility": "flush_to_septic_tank", "shared": False, "excreta": "emptied_to_treatment_plant"}
_OPEN_DRAIN = {"facility": "flush_to_open_drain_or_elsewhere", "shared": False}
_RIVER = {"facility": "no_facility"}
_SOAP = {"facility": "fixed", "water_available": True, "soap": "soap_or_detergent"}
_BUCKET_NO_SOAP = {"facility": "mobile", "water_available": True, "soap": "none"}
_NO_PLACE = {"facility": "none"}


def _survey(on: str, water: dict[str, Any], sanitation: dict[str, Any], hygiene: dict[str, Any]) -> dict[str, Any]:
    return {"surveyed_on": on, "water": water, "sanitation": sanitation, "hygiene": hygiene}


# member number -> surveys (the first is the baseline)
SURVEYS: dict[str, list[dict[str, Any]]] = {
    "BMI-TGR-0001": [_survey("2024-07-02", _WELL_FAR, _CUBLUK, _BUCKET_NO_SOAP),
                     _survey("2025-03-11", _WELL_FAR, _TANK, _SOAP)],
    "BMI-TGR-0002": [_survey("2024-07-02", _TAP_FAR, _SHARED_TANK, _NO_PLACE)],
    "BMI-TGR-0003": [_survey("2024-07-10", _REFILL, _TANK_EMPTIED_IPLT, _SOAP)],
    "BMI-TGR-0004": [_survey("2024-07-10", _WELL, _OPEN_DRAIN, _BUCKET_NO_SOAP),
                     _survey("2025-02-20", _PDAM, _OPEN_DRAIN, _SOAP)],
    "BMI-TGR-0005": [_survey("2024-07-04", _SPRING, _RIVER, _NO_PLACE)],
    "BMI-TGR-0006": [_survey("2024-07-04", _WELL_FAR, _CUBLUK, _BUCKET_NO_SOAP)],
    "BMI-TGR-0007": [_survey("2024-07-12", _PDAM, _TANK, _SOAP)],
    "BMI-TGR-0008": [_survey("2024-07-12", _REFILL, _SHARED_TANK, _BUCKET_NO_SOAP)],
    "BAIK-BGR-101": [_survey("2024-09-16", _SPRING, _CUBLUK, _NO_PLACE),
                     _survey("2025-05-05", _WELL_FAR, _TANK, _BUCKET_NO_SOAP)],
    "BAIK-BGR-102": [_survey("2024-09-16", _TAP_FAR, _RIVER, _NO_PLACE)],
    "BAIK-BGR-103": [_survey("2024-09-18", _PDAM, _TANK, _SOAP)],
    "BAIK-BGR-104": [_survey("2024-09-18", _WELL, _SHARED_TANK, _BUCKET_NO_SOAP)],
    "BAIK-BGR-105": [_survey("2024-09-20", _SPRING, _CUBLUK, _NO_PLACE)],
}

# sessions: attendees and leads by member number
SESSIONS: dict[str, list[dict[str, Any]]] = {
    BMI: [
        {"key": "bmi-2024-08-pemicuan-majelis-07", "kind": "triggering", "held_on": "2024-08-13",
         "topics": ["sanitation", "hygiene"], "group_id": "majelis-07", "village": "Pasir Jaya", "district": "Cikupa",
         "facilitator_id": "FO-017", "other_attendees": 9,
         "attendees": ["BMI-TGR-0001", "BMI-TGR-0002", "BMI-TGR-0005", "BMI-TGR-0006"],
         "leads": [("BMI-TGR-0001", "sanitation"), ("BMI-TGR-0005", "sanitation"), ("BMI-TGR-0006", "sanitation")]},
        {"key": "bmi-2024-09-promosi-majelis-12", "kind": "promotion", "held_on": "2024-09-10",
         "topics": ["water"], "group_id": "majelis-12", "village": "Bitung Jaya", "district": "Cikupa",
         "facilitator_id": "FO-023", "other_attendees": 0,
         "attendees": ["BMI-TGR-0003", "BMI-TGR-0004", "BMI-TGR-0008"],
         "leads": [("BMI-TGR-0004", "water")]},
    ],
    BAIK: [
        {"key": "baik-2024-10-pemicuan-cibanteng", "kind": "triggering", "held_on": "2024-10-02",
         "topics": ["sanitation"], "group_id": None, "village": "Cibanteng", "district": "Ciampea",
         "facilitator_id": "BAIK-FO-04", "other_attendees": 23,
         "attendees": ["BAIK-BGR-101", "BAIK-BGR-102", "BAIK-BGR-105"],
         "leads": [("BAIK-BGR-101", "sanitation"), ("BAIK-BGR-105", "sanitation")]},
        {"key": "baik-2024-11-promosi-kelompok-5", "kind": "promotion", "held_on": "2024-11-15",
         "topics": ["water", "hygiene"], "group_id": "kelompok-5", "village": "Cihideung Ilir", "district": "Ciampea",
         "facilitator_id": "BAIK-FO-02", "other_attendees": 2,
         "attendees": ["BAIK-BGR-103", "BAIK-BGR-104"], "leads": [("BAIK-BGR-104", "water")]},
    ],
}


def demo_keys() -> dict[str, dict[Role, str]]:
    """The published demo keys of both cooperatives (deploy/local/demo.py)."""
    return {t: {Role.FIELD_OFFICER: key_for(t, Role.FIELD_OFFICER), Role.MANAGER: key_for(t, Role.MANAGER)}
            for t in (BMI, BAIK)}


def _ok(r: httpx.Response, *also: int) -> httpx.Response:
    if r.status_code >= 300 and r.status_code not in also:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r


async def load_demo(base_url: str, keys: Mapping[str, Mapping[Role, str]] | None = None, *,
                    transport: httpx.AsyncBaseTransport | None = None) -> dict[str, list[str]]:
    """Load (or complete) the demo data of both cooperatives; returns each one's member ids, in member-number
    order, for the other services' demo loaders. ``transport`` lets tests talk to an in-process app."""
    keys = keys or demo_keys()
    ids: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, transport=transport) as client:
        for tenant in (BMI, BAIK):
            officer = {"X-API-Key": keys[tenant][Role.FIELD_OFFICER]}
            manager = {"X-API-Key": keys[tenant][Role.MANAGER]}
            _ok(await client.put("/settings", json=SETTINGS[tenant], headers=manager))
            for centre in CENTRES[tenant]:
                _ok(await client.post("/centres", json=centre, headers=manager), 409)
            for group in GROUPS[tenant]:
                _ok(await client.post("/groups", json=group, headers=manager), 409)
            by_number: dict[str, str] = {}
            for body in [*DEMO_MEMBERS[tenant], *EXTRA_MEMBERS[tenant]]:
                number = body["member_number"]
                r = _ok(await client.post("/members", json=body,
                                          headers={**officer, "Idempotency-Key": f"demo-{number}"}), 409)
                if r.status_code == 409:  # registered before without this key: find it
                    found = _ok(await client.get("/members", params={"member_number": number, "status": "all"},
                                                 headers=officer)).json()["items"]
                    by_number[number] = found[0]["member_id"]
                else:
                    by_number[number] = r.json()["member_id"]
                if number in PROXIES:
                    _ok(await client.patch(f"/members/{by_number[number]}", json=PROXIES[number], headers=officer))
                for i, survey in enumerate(SURVEYS.get(number, [])):
                    _ok(await client.post(f"/members/{by_number[number]}/surveys", json=survey,
                                          headers={**officer, "Idempotency-Key": f"demo-survey-{number}-{i}"}))
            for s in SESSIONS[tenant]:
                body = {k: v for k, v in s.items() if k not in ("key", "attendees", "leads")}
                body["attendee_member_ids"] = [by_number[n] for n in s["attendees"]]
                session = _ok(await client.post("/sessions", json=body,
                                                 headers={**officer, "Idempotency-Key": f"demo-{s['key']}"})).json()
                for number, product in s["leads"]:
                    _ok(await client.post(f"/sessions/{session['session_id']}/leads",
                                          json={"member_id": by_number[number], "product": product,
                                                "marked_on": s["held_on"]}, headers=officer), 409)
            ids[tenant] = [by_number[n] for n in sorted(by_number)]
    return ids
