"""Demo settings and data of the reporting service.

- ``DEMO_PROGRAMMES``: the demo donor programmes and their consenting cooperatives, for the reporting
  service's ``REPORTING_PROGRAMMES`` setting (``demo_env()``): the demo programme officer keys of
  ``deploy/local/demo.py`` stand for them (subject ``iuwash-plus`` and ``water-org``). USAID IUWASH PLUS
  has both demo cooperatives; Water.org has Koperasi BAIK only (Kopsyah BMI has not consented to it).
- ``load_demo``: each demo cooperative's targets, set by its manager through the API (idempotent: a PUT).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from deploy.local.demo import key_for
from shared.tenancy import Role

BMI, BAIK = "kopsyah-bmi", "koperasi-baik"

DEMO_PROGRAMMES: dict[str, dict[str, Any]] = {
    "iuwash-plus": {"name": "USAID IUWASH PLUS", "cooperatives": {BMI: "2024-01-15", BAIK: "2024-02-01"}},
    "water-org": {"name": "Water.org WaterCredit", "cooperatives": {BAIK: "2024-03-01"}},
}

DEMO_TARGETS: dict[str, dict[str, dict[str, Any]]] = {
    BMI: {"members": {"target": 12, "due_on": "2027-12-31"},
          "people_reached": {"target": 40, "due_on": "2027-12-31"},
          "safely_managed_sanitation_households": {"target": 8, "due_on": "2027-12-31"}},
    BAIK: {"members": {"target": 8, "due_on": "2027-06-30"},
           "people_reached": {"target": 25, "due_on": "2027-06-30"}},
}


def demo_env() -> dict[str, str]:
    """The reporting service's environment for the demo programmes."""
    return {"REPORTING_PROGRAMMES": json.dumps(DEMO_PROGRAMMES)}


async def load_demo(base_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Set the demo cooperatives' targets; returns the number of requests made."""
    done = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=30, transport=transport) as client:
        for tenant, targets in DEMO_TARGETS.items():
            for indicator, body in targets.items():
                r = await client.put(f"/reports/targets/{indicator}", json=body,
                                     headers={"X-API-Key": key_for(tenant, Role.MANAGER)})
                if r.status_code >= 300:
                    raise RuntimeError(f"reporting demo: target {indicator} for {tenant}: {r.status_code} {r.text}")
                done += 1
    return done
