"""The README's walkthrough, run against a running system: one member of the demo cooperative Kopsyah BMI
from registration through a septic-tank financing, its construction, SNI inspection and hand-over, a
repayment, and the tank's first desludging down to the treatment plant (IPLT), with the demo keys that
``make run`` prints. Each step is one API call by the person whose role takes it; a step marked "then"
waits for what another service does by itself (each service reacts to the others' events).

    .venv/bin/python -m deploy.local.walkthrough            # against `make run` (.washfin/run/washfin.env)
    .venv/bin/python -m deploy.local.walkthrough --markdown # the README's section, from these same steps

The services are found as the CLI finds them: ``WASHFIN_<SERVICE>_URL`` in the environment, else in
``--env-file`` (default ``.washfin/run/washfin.env``, written by ``make run``). Every run registers a new
member (its own member number), so it can be run again and again. Exit 0 when every step was answered as
it should; otherwise one line naming the step, the call and the answer, and exit 1.

``tests/deploy/test_walkthrough.py`` runs this against the four services with the demo data loaded, and
checks that the README's section is exactly ``markdown()``, so the README cannot drift from what works.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from deploy.local.demo import DEMO_KEYS
from shared.tenancy import Role

TENANT = "kopsyah-bmi"
SERVICES = ("members", "loans", "sanitation", "reporting")
DEFAULT_ENV_FILE = Path(__file__).resolve().parents[2] / ".washfin" / "run" / "washfin.env"
#: the demo contractor whose key the demo publishes (CV Tirta Bersih, SNI-certified until 2030)
CONTRACTOR_ID = next(k.subject for k in DEMO_KEYS if k.tenant_id == TENANT and k.role == Role.CONTRACTOR)
#: how long a "then" step waits for another service's reaction
PATIENCE_S = 60.0

#: who takes the steps: the demo staff behind each key (deploy/local/demo.py)
PEOPLE = {Role.FIELD_OFFICER: "field officer (Pak Rudi)", Role.MANAGER: "manager (Ibu Ani)",
          Role.INSPECTOR: "inspector (Pak Joko)", Role.CONTRACTOR: "contractor (CV Tirta Bersih)"}

Context = dict[str, Any]


def key(role: Role) -> str:
    """The first demo key of ``role`` in Kopsyah BMI (the manager's is Ibu Ani's, the officer's Pak
    Rudi's)."""
    return next(k.secret for k in DEMO_KEYS if k.tenant_id == TENANT and k.role == role)


@dataclass(frozen=True)
class Step:
    """One call. ``path`` names earlier answers as ``{name}``; ``body`` builds the JSON body from the
    context (today's date, earlier answers); ``take`` keeps what later steps need; ``until``, on a
    "then" step, is polled until true (another service reacting)."""

    title: str
    role: Role
    service: str
    method: str
    path: str
    body: Callable[[Context], dict[str, Any]] | None = None
    take: Callable[[Context, Any], None] | None = None
    until: Callable[[Context, Any], bool] | None = None
    #: what the step shows, in the README
    shows: str = ""
    #: query parameters (may name earlier answers as ``{name}``)
    params: tuple[tuple[str, str], ...] = ()
    #: a 422 whose reason holds this is asked again (the service has not yet learned what it needs)
    retry_while: str | None = None

    def url_path(self, ctx: Context) -> str:
        return self.path.format(**ctx)


def _today(ctx: Context) -> str:
    return str(ctx["today"])


def _member(ctx: Context) -> dict[str, Any]:
    # the baseline survey is dated before the works: a survey on or after the handover day is the newer
    # evidence, and would keep the household's surveyed rung
    return {"member_number": ctx["member_number"], "name": "Sri Wahyuni", "sex": "female",
            "joined_on": "2023-01-16", "household_size": 5, "group_id": "majelis-07", "village": "Pasir Jaya",
            "district": "Cikupa", "area": "rural", "electricity": "450", "programme_consent": True,
            "baseline_survey": {
                "surveyed_on": "2025-01-20", "household_size": 5,
                "water": {"source": "protected_dug_well", "on_premises": False, "round_trip_minutes": 20,
                          "available_when_needed": True},
                "sanitation": {"facility": "flush_to_open_drain_or_elsewhere", "shared": False},
                "hygiene": {"facility": "mobile", "water_available": True, "soap": "soap_or_detergent"}}}


#: a septic tank built to SNI 2398:2017 for five people (what the inspector measured)
TANK = {"household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True,
        "outlet_pipe": True, "vent_pipe": True, "access_manhole": True, "length_m": "1.8", "width_m": "0.8",
        "depth_m": "1.6", "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter",
        "distance_to_well_m": "11.5", "distance_to_building_m": "2", "distance_to_infiltration_well_m": "6.5"}


def _set(name: str, field: str | None = None) -> Callable[[Context, Any], None]:
    def take(ctx: Context, answer: Any) -> None:
        ctx[name] = answer[field or name]
    return take


def _the_job(ctx: Context, answer: Any) -> bool:
    jobs = [j for j in answer["items"] if j["financing_id"] == ctx["financing_id"]]
    if jobs:
        ctx["job_id"] = jobs[0]["job_id"]
    return bool(jobs) and jobs[0]["contractor_id"] == CONTRACTOR_ID


def _first_instalment(ctx: Context, answer: Any) -> None:
    ctx["instalment_amount"] = answer["schedule"][0]["amount"]


def _tranche_two_paid(ctx: Context, answer: Any) -> bool:
    return len(answer["tranches"]) == 2 and all(t["disbursed_on"] for t in answer["tranches"])


OFFICER, MANAGER, INSPECTOR, CONTRACTOR = Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR, Role.CONTRACTOR
F, J = "/financings/{financing_id}", "/jobs/{job_id}"

STEPS: list[Step] = [
    Step("Register the member with the baseline survey", OFFICER, "members", "POST", "/members",
         _member, _set("member_id"), shows="her JMP rungs (sanitation: unimproved)"),
    Step("Apply for a septic-tank financing", OFFICER, "loans", "POST", "/financings",
         lambda ctx: {"member_id": ctx["member_id"], "product_id": "mikro-tata-sanitasi",
                      "amount": 6_000_000, "instalments": 12, "applied_on": _today(ctx)},
         _set("financing_id"), shows="eligibility checked, the margin quoted (`status: applied`)",
         retry_while="not known to the loans service"),
    Step("Approve it (another person than the one who applied)", MANAGER, "loans", "POST", f"{F}/approve",
         lambda ctx: {"approved_on": _today(ctx)}, shows="`status: approved`"),
    Step("Record the work order: required before signing", MANAGER, "loans", "POST", f"{F}/work-order",
         lambda ctx: {"work_order_ref": f"WO-{ctx['member_number']}", "payee_type": "contractor",
                      "payee_id": CONTRACTOR_ID, "cost": 6_000_000, "ordered_on": _today(ctx)},
         shows="the payee and the cost the contract finances"),
    Step("Sign the contract", MANAGER, "loans", "POST", f"{F}/contract",
         lambda ctx: {"signed_on": _today(ctx)}, _first_instalment,
         shows="cost, margin, selling price and `schedule` fixed"),
    Step("Disburse the first tranche", MANAGER, "loans", "POST", f"{F}/disbursements",
         lambda ctx: {"disbursed_on": _today(ctx)},
         shows="tranche 1 paid, tranche 2 waits for the inspection"),
    Step("then sanitation has ordered the construction job, assigned to the work order's contractor",
         OFFICER, "sanitation", "GET", "/jobs", until=_the_job, params=(("member_id", "{member_id}"),),
         shows="the job (`job_id`), `status: assigned`"),
    Step("The contractor starts work", CONTRACTOR, "sanitation", "POST", f"{J}/start",
         lambda ctx: {"started_on": _today(ctx)}, shows="`status: started`"),
    Step("SNI inspection of the septic tank", INSPECTOR, "sanitation", "POST", f"{J}/inspections",
         lambda ctx: {"inspected_on": _today(ctx), "septic_tank": TANK}, shows="`status: inspection_passed`"),
    Step("then loans has released tranche 2 by itself", MANAGER, "loans", "GET", F,
         until=_tranche_two_paid, shows="both tranches disbursed"),
    Step("Hand the tank over", CONTRACTOR, "sanitation", "POST", f"{J}/completion",
         lambda ctx: {"completed_on": _today(ctx)},
         shows="`status: completed`; the first desludging falls due"),
    Step("then the member's household has basic sanitation", OFFICER, "members", "GET",
         "/members/{member_id}",
         until=lambda ctx, a: a["sanitation_rung"] == "basic", shows="`sanitation_rung: basic`"),
    Step("The first repayment", OFFICER, "loans", "POST", f"{F}/repayments",
         lambda ctx: {"receipt_number": f"KW-{ctx['member_number']}-001", "amount": ctx["instalment_amount"],
                      "paid_on": _today(ctx)}, shows="instalment 1 paid"),
    Step("Plan the desludging truck's visit", OFFICER, "sanitation", "POST", f"{J}/desludging/visits",
         lambda ctx: {"planned_on": _today(ctx), "operator": "UPTD PALD Kabupaten Tangerang",
                      "truck_plate": "B 9123 TXA"}, _set("visit_id"), shows="the visit (`visit_id`)"),
    Step("The tank is emptied", OFFICER, "sanitation", "POST", "/desludging/visits/{visit_id}/outcome",
         lambda ctx: {"visited_on": _today(ctx), "outcome": "emptied", "volume_m3": "2.4"},
         shows="2.4 m³ removed"),
    Step("The treatment plant acknowledges the sludge", OFFICER, "sanitation", "POST", "/iplt-receipts",
         lambda ctx: {"visit_id": ctx["visit_id"], "iplt_id": "iplt-jatiwaringin",
                      "manifest_number": f"MNF-{ctx['member_number']}", "received_on": _today(ctx),
                      "volume_received_m3": "2.35"}, shows="emptied and treated"),
    Step("then the member's household is safely managed", OFFICER, "members", "GET",
         "/members/{member_id}",
         until=lambda ctx, a: a["sanitation_rung"] == "safely_managed",
         shows="`sanitation_rung: safely_managed`"),
]


# -- the README's section --------------------------------------------------------------------------------


#: what the README shows instead of a run's own values
PLACEHOLDERS: Context = {"today": "TODAY", "member_number": "WALK-0001",
                         "member_id": "MEMBER_ID", "financing_id": "FINANCING_ID", "job_id": "JOB_ID",
                         "visit_id": "VISIT_ID", "instalment_amount": 560_000}

def _wrapped(value: Any, width: int = 100) -> list[str]:
    """JSON as lines no wider than ``width``: an object's members filled in line by line, a member too wide
    for a line opened up the same way."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) <= width or not isinstance(value, dict):
        return [flat]
    lines, line = ["{"], ""
    items = list(value.items())
    for i, (k, v) in enumerate(items):
        member = f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" + ("," if i < len(items) - 1 else "")
        if len(member) > width - 2:
            if line:
                lines.append("  " + line)
                line = ""
            inner = _wrapped(v, width - 2)
            lines += [f"  {json.dumps(k)}: {inner[0]}", *("  " + ln for ln in inner[1:])]
            lines[-1] += "," if i < len(items) - 1 else ""
        elif line and len(line) + 1 + len(member) > width - 2:
            lines.append("  " + line)
            line = member
        else:
            line = f"{line} {member}" if line else member
    if line:
        lines.append("  " + line)
    return [*lines, "}"]


BEGIN = "<!-- walkthrough: generated by `python -m deploy.local.walkthrough --markdown` -->"
END = "<!-- end of walkthrough -->"


def markdown() -> str:
    """The README's walkthrough section, from ``STEPS`` (what a test compares the README with)."""
    roles = list(PEOPLE)
    lines = [BEGIN, "", "The demo keys of Kopsyah BMI it uses (printed by `make run` too):", "",
             "| who | `X-API-Key` |", "| --- | --- |"]
    lines += [f"| {PEOPLE[r]} | `{key(r)}` |" for r in roles]
    lines += ["", "Every POST may carry an `Idempotency-Key` (the script sends one); TODAY is today's "
              "date in Jakarta.", ""]
    n = 0
    for step in STEPS:
        call = f"{step.service} `{step.method} {step.url_path(PLACEHOLDERS)}"
        if step.params:
            call += "?" + "&".join(f"{k}={v.format(**PLACEHOLDERS)}" for k, v in step.params)
        call += "`"
        if step.until is not None:
            lines += [f"   - *{step.title}*:", f"     {call} shows {step.shows}"]
            continue
        n += 1
        lines += [f"{n}. **{step.title}**, {PEOPLE[step.role]}:", f"   {call}: {step.shows}"]
        if step.body is not None:
            body = _wrapped(step.body(PLACEHOLDERS))
            lines += ["", "   ```json", *("   " + ln for ln in body), "   ```", ""]
        if step.retry_while is not None:
            lines += [f"   A 422 saying \"{step.retry_while}\" right after step 1: loans learns of the "
                      "member",
                      "   from the members service's events within a second or so; send it again.", ""]
    lines += ["", END]
    return "\n".join(lines)


# -- running it ------------------------------------------------------------------------------------------


class StepFailed(Exception):
    pass


def service_urls(env_file: Path) -> dict[str, str]:
    """``WASHFIN_<SERVICE>_URL`` from the environment, else from ``env_file``."""
    found = {s: os.environ.get(f"WASHFIN_{s.upper()}_URL", "") for s in SERVICES}
    if not all(found.values()) and env_file.exists():
        for line in env_file.read_text().splitlines():
            name, _, value = line.strip().partition("=")
            for s in SERVICES:
                if name == f"WASHFIN_{s.upper()}_URL" and not found[s]:
                    found[s] = value.strip()
    missing = [f"WASHFIN_{s.upper()}_URL" for s, url in found.items() if not url]
    if missing:
        raise StepFailed(f"{', '.join(missing)} not set and not in {env_file}: start the system with "
                         "`make run` (or pass --env-file)")
    return found


def new_context(today: date) -> Context:
    return {"today": today.isoformat(),
            "member_number": f"WALK-{datetime.now(ZoneInfo('UTC')):%y%m%d%H%M%S}-"
                             f"{secrets.token_hex(2).upper()}"}


def run(urls: dict[str, str], say: Callable[[str], None] = print, patience_s: float = PATIENCE_S) -> Context:
    """Every step in order against the services at ``urls``; returns what the steps gave (ids, amounts)."""
    ctx = new_context(datetime.now(ZoneInfo("Asia/Jakarta")).date())
    n = 0
    with httpx.Client(timeout=30) as client:
        for step in STEPS:
            if step.until is None:
                n += 1
            where = f"step {n} ({step.title})" if step.until is None else f"after step {n} ({step.title})"
            path = step.url_path(ctx)
            params = {k: v.format(**ctx) for k, v in step.params}
            headers = {"X-API-Key": key(step.role)}
            body = step.body(ctx) if step.body is not None else None
            if step.method == "POST":
                headers["Idempotency-Key"] = f"walkthrough-{ctx['member_number']}-{n}"
            deadline = time.monotonic() + patience_s
            while True:
                try:
                    r = client.request(step.method, urls[step.service] + path, json=body, params=params,
                                       headers=headers)
                except httpx.HTTPError as e:
                    raise StepFailed(f"{where}: {step.service} {step.method} {path}: no answer "
                                     f"({e})") from None
                try:
                    waiting = step.until is not None and (r.status_code == 404 or (
                        r.status_code == 200 and not step.until(ctx, r.json())))
                except (ValueError, LookupError, TypeError) as e:
                    raise StepFailed(f"{where}: {step.service} {step.method} {path} answered something "
                                     f"unexpected ({e!r}): {r.text[:300]}") from None
                waiting |= (step.retry_while is not None and r.status_code == 422
                            and step.retry_while in r.text)
                if not waiting:
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(f"{where}: {step.service} {step.method} {path} still did not show "
                                     f"{step.shows} after {patience_s:.0f}s: {r.status_code} {r.text[:1500]}")
                time.sleep(0.25)
            if not 200 <= r.status_code < 300:
                raise StepFailed(f"{where}: {step.service} {step.method} {path} answered {r.status_code}: "
                                 f"{r.text[:500]}")
            if step.take is not None:
                try:
                    step.take(ctx, r.json())
                except (ValueError, LookupError, TypeError) as e:
                    raise StepFailed(f"{where}: {step.service} {step.method} {path} answered without what "
                                     f"later steps need ({e!r}): {r.text[:300]}") from None
            mark = "   " if step.until is not None else f"{n:>2}."
            say(f"{mark} {step.title}: {step.service} {step.method} {path} -> {r.status_code}")
    return ctx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.walkthrough",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true",
                        help="print the README's section instead of running it")
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE,
                        help="where to find WASHFIN_<SERVICE>_URL (default: .washfin/run/washfin.env)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown())
        return 0
    try:
        ctx = run(service_urls(args.env_file))
    except StepFailed as e:
        print(f"error: walkthrough failed {e}", file=sys.stderr)
        return 1
    print(f"done: member {ctx['member_number']} ({ctx['member_id']}), financing {ctx['financing_id']}, "
          f"job {ctx['job_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
