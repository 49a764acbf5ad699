"""A hand-built scenario loaded through the services' HTTP APIs: two demo cooperatives (Kopsyah BMI,
Koperasi BAIK) and a third that does not consent to the programme (Koperasi Citra), a dozen members,
financings with known payments, construction jobs, SNI inspections, and desludging with and without
IPLT receipts. Every date is fixed (2021-2025); ``test_scenario`` works each figure out by hand.

Money: a "tank" financing costs Rp 5 000 000 with a 10 % margin (Rp 500 000): 10 monthly instalments of
Rp 550 000, each with Rp 500 000 of principal; a "water" financing costs Rp 2 000 000 (+200 000): 5
instalments of Rp 440 000, each with Rp 400 000 of principal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from deploy.local.demo import key_for
from shared.db import connect
from shared.tenancy import Role, create_tenant, issue_key
from tests.helpers import ServiceClient, eventually

BMI, BAIK, CITRA = "kopsyah-bmi", "koperasi-baik", "koperasi-citra"
#: the scenario's products, by code: the names their cooperatives give them
PRODUCT_NAMES = {"bmi-tank": "Tangki Septik Sehat", "bmi-air": "Sambungan Air PDAM", "baik-jamban": "Jamban Baik",
                 "c-air": "Air Bersih Citra"}
CITRA_KEYS = {Role.MANAGER: "wf_citramanage1_testKeyNotForProductionUseCITRA001",
              Role.FIELD_OFFICER: "wf_citraofficer_testKeyNotForProductionUseCITRA002"}
OPERATOR_KEY = "wf_reportoper01_testKeyNotForProductionUseOPERATOR1"
PROGRAMME = "iuwash-plus"  # the demo programme officer key of Kopsyah BMI stands for it

# survey answers and the JMP rung the members service gives them
W_BASIC = {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 15}        # basic
W_LIMITED = {"source": "public_tap_standpipe", "round_trip_minutes": 40}                        # limited
W_UNIMPROVED = {"source": "unprotected_spring", "on_premises": False, "round_trip_minutes": 25}  # unimproved
W_SURFACE = {"source": "surface_water"}                                                         # surface_water
W_SAFE = {"source": "piped_into_dwelling", "available_when_needed": True, "free_from_contamination": True}
S_OD = {"facility": "no_facility"}                                                              # open_defecation
S_UNIMPROVED = {"facility": "pit_latrine_without_slab", "shared": False}                        # unimproved
S_LIMITED = {"facility": "flush_to_septic_tank", "shared": True, "excreta": "never_emptied"}    # limited
S_BASIC = {"facility": "flush_to_septic_tank", "shared": False, "excreta": "emptying_unknown"}  # basic
S_SAFE = {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}     # safely_managed

GOOD_TANK: dict[str, Any] = {
    "household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True, "outlet_pipe": True,
    "vent_pipe": True, "access_manhole": True, "length_m": "1.8", "width_m": "0.8", "depth_m": "1.6",
    "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter", "distance_to_well_m": "11.5",
    "distance_to_building_m": "2", "distance_to_infiltration_well_m": None,
}
NARROW_TANK = {**GOOD_TANK, "width_m": "0.7"}  # fails the SNI width
JUDGED = {"toilet_upgrade": ("water_seal_pan", "connected_to_safe_containment", "no_leaks"),
          "water_connection": ("meter_installed", "water_flows", "no_leaks")}


def job_of(financing_id: str) -> str:
    """The construction job a financing's first tranche orders (the sanitation reaction's rule)."""
    return str(uuid.uuid5(uuid.UUID(financing_id), "job"))


async def prepare_citra(platform_url: str) -> None:
    """The third cooperative, its keys, and an operator key (issued with shared.tenancy: idempotent)."""
    conn = await connect(platform_url)
    try:
        await create_tenant(conn, CITRA, "Koperasi Citra (Depok)")
        for role, secret in CITRA_KEYS.items():
            await issue_key(conn, CITRA, role, label="test", secret=secret)
        await issue_key(conn, None, Role.OPERATOR, label="test", secret=OPERATOR_KEY)
    finally:
        await conn.close()


def key(tenant: str, role: Role) -> str:
    return CITRA_KEYS[role] if tenant == CITRA else key_for(tenant, role)


@dataclass
class Coop:
    """Talks to the services as one cooperative's staff."""

    tenant: str
    members: ServiceClient
    loans: ServiceClient
    sanitation: ServiceClient
    ids: dict[str, str] = field(default_factory=dict)

    async def call(self, client: httpx.AsyncClient, method: str, path: str, role: Role = Role.FIELD_OFFICER,
                   body: Any = None, **kw: Any) -> Any:
        r = await client.request(method, path, json=body, headers={"X-API-Key": key(self.tenant, role)}, **kw)
        assert r.status_code < 300, f"{method} {path} ({self.tenant}): {r.status_code} {r.text}"
        return r.json() if r.content else None

    # -- members ---------------------------------------------------------------------------------------
    async def member(self, name: str, sex: str, joined_on: str, household: int, area: str | None,
                     b40: bool | None) -> str:
        body = {"member_number": f"{self.tenant[:4].upper()}-{name}", "name": f"Anggota {name}", "sex": sex,
                "joined_on": joined_on, "household_size": household, "area": area, "b40": b40,
                "programme_consent": True}
        self.ids[name] = (await self.call(self.members, "POST", "/members", body=body))["member_id"]
        return self.ids[name]

    async def survey(self, name: str, on: str, water: dict[str, Any], sanitation: dict[str, Any]) -> None:
        await self.call(self.members, "POST", f"/members/{self.ids[name]}/surveys",
                        body={"surveyed_on": on, "water": water, "sanitation": sanitation,
                              "hygiene": {"facility": "none"}})

    async def session(self, kind: str, on: str, topics: list[str], attendees: list[str], others: int) -> str:
        r = await self.call(self.members, "POST", "/sessions", body={
            "kind": kind, "held_on": on, "topics": topics, "facilitator_id": "FO-01", "village": "Desa Uji",
            "attendee_member_ids": [self.ids[n] for n in attendees], "other_attendees": others})
        return str(r["session_id"])

    async def attend(self, session_id: str, names: list[str]) -> None:
        await self.call(self.members, "POST", f"/sessions/{session_id}/attendance",
                        body={"member_ids": [self.ids[n] for n in names]})

    async def lead(self, session_id: str, name: str, product: str, on: str) -> None:
        await self.call(self.members, "POST", f"/sessions/{session_id}/leads",
                        body={"member_id": self.ids[name], "product": product, "marked_on": on})

    async def exit(self, name: str, on: str) -> None:
        await self.call(self.members, "POST", f"/members/{self.ids[name]}/exit",
                        body={"exited_on": on, "reason": "moved_away"})

    # -- loans -------------------------------------------------------------------------------------------
    async def product(self, product_id: str, purpose: str, instalments: int, tranches: list[int],
                      funds: list[str], late_charge: int = 0) -> None:
        await self.call(self.loans, "POST", "/products", Role.MANAGER, body={
            "product_id": product_id, "name": PRODUCT_NAMES.get(product_id, product_id), "purpose": purpose,
            "contract_type": "murabahah",
            "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 10_000_000,
            "tenors": [{"instalments": instalments, "margin_bp": 1000}], "tranche_percents": tranches,
            "late_charge": late_charge, "funds": funds, "defined_on": "2020-01-01"})

    async def apply(self, label: str, name: str, product: str, amount: int, instalments: int, on: str) -> str:
        body = {"member_id": self.ids[name], "product_id": product, "amount": amount, "instalments": instalments,
                "applied_on": on}
        await self.loans_knows(name)
        r = await self.loans.post("/financings", json=body, headers={"X-API-Key": key(self.tenant, Role.FIELD_OFFICER)})
        assert r.status_code == 201, r.text
        self.ids[label] = str(r.json()["financing_id"])
        return self.ids[label]

    async def loans_knows(self, name: str) -> None:
        """Wait until the loans service's member directory has applied the member's stream (it learns
        members from the members service's log; the directory and its bookkeeping commit together)."""
        async def known() -> bool:
            return bool(await self.loans.runtime.worker_pool.fetchval(
                "SELECT count(*) FROM consumer_streams WHERE consumer = 'loans.members.v1' AND tenant_id = $1 "
                "AND stream_id = $2", self.tenant, self.ids[name]))

        await eventually(known, timeout=60, interval=0.05)

    async def approve(self, label: str, on: str) -> None:
        await self.call(self.loans, "POST", f"/financings/{self.ids[label]}/approve", Role.MANAGER,
                        body={"approved_on": on})

    async def sign(self, label: str, payee: tuple[str, str], cost: int, ordered_on: str, signed_on: str,
                   first_due_on: str) -> list[dict[str, Any]]:
        f = f"/financings/{self.ids[label]}"
        await self.call(self.loans, "POST", f"{f}/work-order", Role.MANAGER, body={
            "work_order_ref": f"WO-{label}", "payee_type": payee[0], "payee_id": payee[1], "cost": cost,
            "ordered_on": ordered_on})
        r = await self.call(self.loans, "POST", f"{f}/contract", Role.MANAGER,
                            body={"signed_on": signed_on, "first_due_on": first_due_on})
        return r["schedule"]  # type: ignore[no-any-return]

    async def disburse(self, label: str, on: str, fund: str) -> None:
        await self.call(self.loans, "POST", f"/financings/{self.ids[label]}/disbursements", Role.MANAGER,
                        body={"disbursed_on": on, "source_of_funds": fund})

    async def repay(self, label: str, receipt: str, amount: int, on: str) -> None:
        await self.call(self.loans, "POST", f"/financings/{self.ids[label]}/repayments", body={
            "receipt_number": f"{label}-{receipt}", "amount": amount, "paid_on": on})

    async def financing(self, label: str) -> dict[str, Any]:
        return await self.call(self.loans, "GET", f"/financings/{self.ids[label]}")  # type: ignore[no-any-return]

    async def tranche_released(self, label: str, number: int) -> None:
        async def released() -> bool:
            f = await self.financing(label)
            return any(t["number"] == number and t.get("disbursed_on") for t in f["tranches"])
        await eventually(released, timeout=30)

    # -- sanitation --------------------------------------------------------------------------------------
    async def contractor(self, label: str, certified: bool) -> str:
        r = await self.call(self.sanitation, "POST", "/contractors",
                            body={"name": f"CV {label}", "contact": "021 000", "trained_on": "2020-06-01"})
        self.ids[label] = r["contractor_id"]
        if certified:
            await self.call(self.sanitation, "POST", f"/contractors/{r['contractor_id']}/certification",
                            body={"certificate_number": f"SNI-{label}", "certified_on": "2020-07-01",
                                  "valid_until": "2030-12-31"})
        return str(r["contractor_id"])

    async def cash_job(self, label: str, name: str, kind: str, ordered_on: str) -> str:
        """A cash job ordered for the member; sanitation learns members from the members service's log and
        refuses one it does not know yet (422 on member_id, "not known here yet"): the order is sent again,
        with the same Idempotency-Key, until it is known."""
        body = {"member_id": self.ids[name], "kind": kind, "ordered_on": ordered_on}
        h = {"X-API-Key": key(self.tenant, Role.FIELD_OFFICER), "Idempotency-Key": str(uuid.uuid4())}

        async def ordered() -> httpx.Response | None:
            r = await self.sanitation.post("/jobs", json=body, headers=h)
            if r.status_code == 422 and "not known here yet" in r.text:
                return None
            assert r.status_code == 201, f"POST /jobs ({self.tenant}): {r.status_code} {r.text}"
            return r
        r = await eventually(ordered, timeout=60, interval=0.1)
        self.ids[label] = r.json()["job_id"]
        return str(r.json()["job_id"])

    async def financed_job(self, label: str, financing_label: str) -> str:
        job_id = job_of(self.ids[financing_label])

        async def ordered() -> bool:
            r = await self.sanitation.get(f"/jobs/{job_id}",
                                          headers={"X-API-Key": key(self.tenant, Role.FIELD_OFFICER)})
            return r.status_code == 200
        await eventually(ordered, timeout=30)
        self.ids[label] = job_id
        return job_id

    async def build(self, label: str, kind: str, contractor: str, assigned: str, started: str,
                    inspections: list[tuple[str, bool]], completed: str) -> None:
        """Assign, start, inspect (with a rework before each re-inspection), hand over."""
        j = f"/jobs/{self.ids[label]}"
        await self.call(self.sanitation, "POST", f"{j}/assignment",
                        body={"contractor_id": self.ids[contractor], "assigned_on": assigned})
        await self.call(self.sanitation, "POST", f"{j}/start", body={"started_on": started})
        for n, (on, passed) in enumerate(inspections):
            if n:
                await self.call(self.sanitation, "POST", f"{j}/rework", body={"started_on": on, "note": "rebuilt"})
            if kind == "septic_tank":
                body: dict[str, Any] = {"inspected_on": on, "septic_tank": GOOD_TANK if passed else NARROW_TANK}
            else:
                body = {"inspected_on": on, "items": {
                    code: {"passed": passed or code != "no_leaks", "note": None if passed or code != "no_leaks"
                           else "drips", "photo_ref": f"p/{code}.jpg"} for code in JUDGED[kind]}}
            await self.call(self.sanitation, "POST", f"{j}/inspections", Role.INSPECTOR, body=body)
        done: dict[str, Any] = {"completed_on": completed}
        if kind == "water_connection":
            done["pdam_customer_number"] = f"PDAM-{label}"
        await self.call(self.sanitation, "POST", f"{j}/completion", body=done)

    async def visit(self, label: str, planned: str, visited: str, outcome: str, volume: str | None = None,
                    receipt: tuple[str, str] | None = None) -> None:
        v = await self.call(self.sanitation, "POST", f"/jobs/{self.ids[label]}/desludging/visits",
                            body={"planned_on": planned, "operator": "UPTD PALD", "truck_plate": "B 9123 TXA"})
        body: dict[str, Any] = {"visited_on": visited, "outcome": outcome}
        if volume is not None:
            body["volume_m3"] = volume
        await self.call(self.sanitation, "POST", f"/desludging/visits/{v['visit_id']}/outcome", body=body)
        if receipt is not None:
            received_on, received = receipt
            await self.call(self.sanitation, "POST", "/iplt-receipts", body={
                "visit_id": v["visit_id"], "iplt_id": "iplt-test", "manifest_number": f"M-{label}-{visited}",
                "received_on": received_on, "volume_received_m3": received})


TANK, WATER = 5_000_000, 2_000_000


async def load_bmi(c: Coop) -> None:
    # members: (sex, joined, household, area, B40)
    await c.member("m1", "female", "2022-01-10", 5, "rural", True)
    await c.member("m2", "female", "2022-02-10", 4, "rural", True)
    await c.member("m3", "female", "2022-03-10", 6, "urban", False)
    await c.member("m4", "male", "2022-04-10", 3, "urban", True)
    await c.member("m5", "female", "2022-05-10", 7, "rural", None)
    await c.member("m6", "female", "2022-06-10", 2, None, False)
    await c.survey("m1", "2025-01-02", W_BASIC, S_UNIMPROVED)
    await c.survey("m2", "2025-01-02", W_LIMITED, S_OD)
    await c.survey("m2", "2025-09-01", W_LIMITED, S_SAFE)  # follow-up: own SNI tank, never emptied
    await c.survey("m3", "2025-01-02", W_UNIMPROVED, S_LIMITED)
    await c.survey("m4", "2025-02-15", W_UNIMPROVED, S_BASIC)
    await c.survey("m6", "2025-01-02", W_BASIC, S_BASIC)
    s1 = await c.session("triggering", "2024-12-10", ["sanitation"], ["m1", "m2", "m5"], 10)
    await c.attend(s1, ["m6"])
    for m in ("m1", "m2", "m5"):
        await c.lead(s1, m, "sanitation", "2024-12-10")
    s2 = await c.session("promotion", "2025-02-20", ["water"], ["m3", "m4"], 0)
    await c.lead(s2, "m4", "water", "2025-02-20")

    await c.product("bmi-tank", "septic_tank", 10, [50, 50], ["own_funds", "water_org"], late_charge=10_000)
    await c.product("bmi-air", "water_connection", 5, [100], ["own_funds", "donor_working_capital"])
    await c.contractor("K1", certified=True)
    await c.contractor("K2", certified=True)
    await c.contractor("K3", certified=False)  # a plumber: water connections need no SNI certificate

    # F1: tank, water_org, repaid on every due date (Feb-Nov 15) -> settled 2025-11-15
    await c.apply("F1", "m1", "bmi-tank", TANK, 10, "2025-01-02")
    await c.approve("F1", "2025-01-03")
    await c.sign("F1", ("contractor", "K1"), TANK, "2025-01-04", "2025-01-05", "2025-02-15")
    await c.disburse("F1", "2025-01-06", "water_org")
    await c.financed_job("J1", "F1")
    await c.build("J1", "septic_tank", "K1", "2025-01-07", "2025-01-10", [("2025-01-20", True)], "2025-01-25")
    await c.tranche_released("F1", 2)
    # F2: tank, own funds, pays Feb-Apr, late charge on May, rescheduled 2025-07-10 into 10 x 385 000 from Aug 15
    await c.apply("F2", "m2", "bmi-tank", TANK, 10, "2025-01-02")
    await c.approve("F2", "2025-01-03")
    await c.sign("F2", ("contractor", "K2"), TANK, "2025-01-04", "2025-01-05", "2025-02-15")
    await c.disburse("F2", "2025-01-06", "own_funds")
    await c.financed_job("J2", "F2")
    await c.build("J2", "septic_tank", "K2", "2025-01-07", "2025-01-10",
                  [("2025-01-20", False), ("2025-02-05", True)], "2025-02-10")
    await c.tranche_released("F2", 2)
    # F3: water, donor working capital, pays Feb only; written off 2025-09-30; Rp 440 000 recovered 2025-11-20
    await c.apply("F3", "m3", "bmi-air", WATER, 5, "2025-01-02")
    await c.approve("F3", "2025-01-03")
    await c.sign("F3", ("pdam", "PDAM-TKR"), WATER, "2025-01-04", "2025-01-05", "2025-02-15")
    await c.disburse("F3", "2025-01-06", "donor_working_capital")
    await c.financed_job("J3", "F3")
    await c.build("J3", "water_connection", "K3", "2025-01-07", "2025-01-08", [("2025-01-15", True)], "2025-01-18")
    # F4: water, own funds, pays Apr 15, settles early 2025-05-20 (rebate of unearned margin)
    await c.apply("F4", "m4", "bmi-air", WATER, 5, "2025-03-01")
    await c.approve("F4", "2025-03-02")
    await c.sign("F4", ("pdam", "PDAM-TKR"), WATER, "2025-03-03", "2025-03-05", "2025-04-15")
    await c.disburse("F4", "2025-03-06", "own_funds")
    await c.financed_job("J4", "F4")
    await c.build("J4", "water_connection", "K3", "2025-03-07", "2025-03-08", [("2025-03-15", True)], "2025-03-20")
    # F5: tank, water_org, signed 2025-07-01, pays Aug-Oct, Nov and Dec unpaid
    await c.apply("F5", "m5", "bmi-tank", TANK, 10, "2025-06-10")
    await c.approve("F5", "2025-06-12")
    await c.sign("F5", ("contractor", "K1"), TANK, "2025-06-15", "2025-07-01", "2025-08-15")
    await c.disburse("F5", "2025-07-02", "water_org")
    await c.financed_job("J5", "F5")
    await c.build("J5", "septic_tank", "K1", "2025-07-03", "2025-07-05", [("2025-07-20", True)], "2025-07-25")
    await c.tranche_released("F5", 2)
    # F6: applied and rejected
    await c.apply("F6", "m6", "bmi-tank", TANK, 10, "2025-06-20")
    await c.call(c.loans, "POST", f"/financings/{c.ids['F6']}/reject", Role.MANAGER,
                 body={"reason": "repayment_capacity", "rejected_on": "2025-06-25"})

    # repayments in date order (a schedule change refuses payments dated before it)
    for month in ("02", "03", "04"):
        await c.repay("F1", month, 550_000, f"2025-{month}-15")
        await c.repay("F2", month, 550_000, f"2025-{month}-15")
        if month == "02":
            await c.repay("F3", month, 440_000, "2025-02-15")
        if month == "04":
            await c.repay("F4", month, 440_000, "2025-04-15")
    await c.repay("F1", "05", 550_000, "2025-05-15")
    quote = await c.call(c.loans, "GET", f"/financings/{c.ids['F4']}/settlement-quote", params={"on": "2025-05-20"})
    # owed 4 x 440 000 = 1 760 000; unearned margin: 200 000 - 200 000 x 2/5 periods = 120 000 (<= the
    # 160 000 margin unpaid) -> to pay 1 640 000
    assert (quote["rebate"], quote["to_pay"]) == (120_000, 1_640_000), quote
    await c.call(c.loans, "POST", f"/financings/{c.ids['F4']}/early-settlement", body={
        "receipt_number": "F4-early", "amount": 1_640_000, "settled_on": "2025-05-20"})
    # F2's May instalment (number 4) is late: a ta'zir of Rp 10 000 to the social fund, maker-checker
    await c.call(c.loans, "POST", f"/financings/{c.ids['F2']}/late-charges", body={
        "instalment_number": 4, "note": "able to pay, declined twice", "proposed_on": "2025-06-01"})
    await c.call(c.loans, "POST", f"/financings/{c.ids['F2']}/late-charges/4/approve", Role.MANAGER,
                 body={"decided_on": "2025-06-02"})
    # the member pays it in two parts (Rp 4 000 now, Rp 6 000 in November): social fund money, never a
    # repayment: no other figure moves
    await c.call(c.loans, "POST", f"/financings/{c.ids['F2']}/late-charges/4/payments", body={
        "receipt_number": "F2-tazir-1", "amount": 4_000, "paid_on": "2025-06-20"})
    await c.repay("F1", "06", 550_000, "2025-06-15")
    await c.call(c.loans, "POST", f"/financings/{c.ids['F2']}/reschedule", Role.MANAGER, body={
        "instalments": 10, "reason": "hardship", "first_due_on": "2025-08-15", "rescheduled_on": "2025-07-10"})
    await c.repay("F1", "07", 550_000, "2025-07-15")
    for month in ("08", "09", "10"):
        await c.repay("F1", month, 550_000, f"2025-{month}-15")
        await c.repay("F2", month, 385_000, f"2025-{month}-15")
        await c.repay("F5", month, 550_000, f"2025-{month}-15")
    await c.call(c.loans, "POST", f"/financings/{c.ids['F3']}/write-off", Role.MANAGER,
                 body={"reason": "uncollectable", "written_off_on": "2025-09-30"})
    await c.call(c.loans, "POST", f"/financings/{c.ids['F2']}/late-charges/4/payments", body={
        "receipt_number": "F2-tazir-2", "amount": 6_000, "paid_on": "2025-11-20"})
    await c.repay("F1", "11", 550_000, "2025-11-15")
    await c.repay("F2", "11", 385_000, "2025-11-15")
    await c.repay("F3", "recovery", 440_000, "2025-11-20")
    await c.repay("F2", "12", 385_000, "2025-12-15")

    # cash-funded septic tanks from 2022 (desludging falls due 3 years after handover)
    await c.cash_job("T1", "m6", "septic_tank", "2022-01-10")
    await c.build("T1", "septic_tank", "K1", "2022-01-12", "2022-01-15", [("2022-01-25", True)], "2022-01-31")
    await c.cash_job("T2", "m4", "septic_tank", "2022-03-01")
    await c.build("T2", "septic_tank", "K2", "2022-03-03", "2022-03-05", [("2022-03-15", True)], "2022-03-20")
    await c.cash_job("T3", "m5", "septic_tank", "2022-06-10")
    await c.build("T3", "septic_tank", "K1", "2022-06-12", "2022-06-15", [("2022-06-25", True)], "2022-06-30")
    await c.visit("T1", "2025-03-01", "2025-03-03", "emptied", "2.400", ("2025-03-03", "2.350"))  # within 10 %
    await c.visit("T2", "2025-04-01", "2025-04-02", "emptied", "3.000")                          # no IPLT receipt
    await c.visit("T3", "2025-08-05", "2025-08-05", "hose_cannot_reach")
    await c.visit("T3", "2025-09-01", "2025-09-02", "emptied", "2.000", ("2025-09-03", "1.500"))  # mismatch
    await c.exit("m6", "2025-10-31")


async def load_baik(c: Coop) -> None:
    await c.call(c.sanitation, "PUT", "/settings", Role.MANAGER, body={"desludging_interval_years": 2})
    await c.member("b1", "female", "2022-01-05", 5, "rural", True)
    await c.member("b2", "female", "2022-01-05", 6, "rural", True)
    await c.member("b3", "female", "2024-10-01", 4, "urban", False)
    await c.member("b4", "female", "2022-02-01", 3, "urban", True)
    await c.member("b5", "male", "2025-08-01", 8, "rural", False)
    await c.survey("b1", "2025-01-20", W_UNIMPROVED, S_UNIMPROVED)
    await c.survey("b2", "2025-01-20", W_SURFACE, S_OD)
    await c.survey("b3", "2025-01-20", W_SAFE, S_LIMITED)
    await c.survey("b4", "2025-01-20", W_BASIC, S_BASIC)
    await c.survey("b5", "2025-08-05", W_LIMITED, S_OD)
    s3 = await c.session("triggering", "2025-01-15", ["sanitation"], ["b1", "b2", "b4"], 5)
    await c.lead(s3, "b1", "sanitation", "2025-01-15")
    await c.lead(s3, "b2", "sanitation", "2025-01-15")

    await c.product("baik-jamban", "toilet_upgrade", 10, [50, 50], ["own_funds"], late_charge=5_000)
    await c.contractor("K4", certified=True)
    await c.contractor("K5", certified=True)
    # G1: toilet upgrade, repaid on every due date (Mar-Dec 10) -> settled 2025-12-10
    await c.apply("G1", "b1", "baik-jamban", TANK, 10, "2025-02-01")
    await c.approve("G1", "2025-02-02")
    await c.sign("G1", ("contractor", "K4"), TANK, "2025-02-03", "2025-02-05", "2025-03-10")
    await c.disburse("G1", "2025-02-06", "own_funds")
    await c.financed_job("J6", "G1")
    await c.build("J6", "toilet_upgrade", "K4", "2025-02-07", "2025-02-08", [("2025-02-20", True)], "2025-02-25")
    await c.tranche_released("G1", 2)
    # G2: toilet upgrade, two failed inspections; pays Mar 10 on time and Apr 10 late (Apr 20), then nothing
    await c.apply("G2", "b2", "baik-jamban", TANK, 10, "2025-02-01")
    await c.approve("G2", "2025-02-02")
    await c.sign("G2", ("contractor", "K4"), TANK, "2025-02-03", "2025-02-05", "2025-03-10")
    await c.disburse("G2", "2025-02-06", "own_funds")
    await c.financed_job("J7", "G2")
    await c.build("J7", "toilet_upgrade", "K4", "2025-02-07", "2025-02-08",
                  [("2025-02-20", False), ("2025-03-01", False), ("2025-03-10", True)], "2025-03-15")
    await c.tranche_released("G2", 2)
    await c.repay("G2", "03", 550_000, "2025-03-10")
    await c.repay("G2", "04", 550_000, "2025-04-20")
    for month in ("03", "04", "05", "06", "07", "08", "09", "10", "11", "12"):
        await c.repay("G1", month, 550_000, f"2025-{month}-10")
    # G3: applied only
    await c.apply("G3", "b3", "baik-jamban", 4_000_000, 10, "2025-11-01")
    # cash-funded tanks (interval 2 years)
    await c.cash_job("T4", "b4", "septic_tank", "2023-06-01")
    await c.build("T4", "septic_tank", "K4", "2023-06-03", "2023-06-05", [("2023-06-15", True)], "2023-06-20")
    await c.cash_job("T5", "b2", "septic_tank", "2023-12-10")
    await c.build("T5", "septic_tank", "K5", "2023-12-12", "2023-12-14", [("2023-12-24", True)], "2023-12-31")
    await c.visit("T4", "2025-07-01", "2025-07-01", "emptied", "2.500", ("2025-07-02", "2.500"))


async def load_citra(c: Coop) -> None:
    await c.member("c1", "female", "2022-01-01", 4, "rural", True)
    await c.survey("c1", "2025-01-10", W_LIMITED, S_OD)
    await c.product("c-air", "water_connection", 5, [100], ["own_funds"])
    await c.apply("H1", "c1", "c-air", WATER, 5, "2025-03-01")
