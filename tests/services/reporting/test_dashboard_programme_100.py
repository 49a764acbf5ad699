"""The programme dashboard with 100 cooperatives, in headless Chromium (the driver and helpers of
``test_dashboard``).

The data comes through the real system: 100 cooperatives registered in a platform database of this test's
own, one field officer key each, one to four members each registered through the members service's API
(a separate process), and the reporting service (another process, the embedded event source) projecting
them for a programme seeded with all 100. The page is checked against ``GET /reports/dashboard`` for the
programme officer's key: one row per cooperative and the programme total first, sorting, search, paging,
both languages, and widths: the table fits its panel at 1,280 px, and at a phone's 412 px the page does
not scroll sideways (the table scrolls inside its own box). Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.infra import PostgresHandle
from deploy.local.services import SERVICES, ServiceProcess, service_env
from shared.db import connect, migrate
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.tenancy import Role, create_tenant, issue_key, migrate_platform
from tests.services.reporting.test_dashboard import (  # noqa: F401  (fixtures: browser, chromium_executable)
    ARTIFACTS, BYCOOP_GROUPS, CONSTRUCTION, DESLUDGING, FINANCING, HEADLINE, HEIGHT, WIDTH, Chromium, browser,
    bycoop_shown, chromium_executable, open_dashboard,
)

pytestmark = pytest.mark.timeout(900)

PROGRAMME = "air-bersih-nusantara"
PROGRAMME_NAME = "Air Bersih Nusantara"
N = 100
PAGE = 20
PHONE = 412
PREFIXES = ["Koperasi", "Kopsyah", "KSPPS", "BMT", "KSP"]
WORDS = ["Sejahtera", "Mandiri", "Berkah", "Amanah", "Harapan", "Makmur", "Bina Usaha", "Tirta", "Mitra",
         "Sinar"]
PLACES = ["Tangerang", "Bogor", "Sleman", "Garut", "Cirebon", "Banyumas", "Kediri", "Jember", "Maros",
          "Lombok Timur"]
FIRST = ["Siti", "Nur", "Dewi", "Rina", "Euis", "Ade", "Sri", "Yuli", "Ratna", "Ahmad", "Budi", "Agus"]
SECTIONS = {"headline": HEADLINE, "financing": FINANCING, "desludging": DESLUDGING, "construction": CONSTRUCTION}
KINDS = {f"{section}.{k}": kind for section, table in SECTIONS.items() for k, kind in table.items()}


def cooperatives() -> list[tuple[str, str]]:
    """(id, name) of the 100: every name distinct, as long as real cooperatives' names are."""
    return [(f"kop-{i + 1:03d}", f"{PREFIXES[(i * 3) % 5]} {WORDS[i % 10]} {PLACES[i // 10]}")
            for i in range(N)]


def members_of(i: int, tenant: str) -> list[dict[str, Any]]:
    """One to four members, mixed sexes, areas and household sizes: the columns differ between cooperatives."""
    out = []
    for j in range(1 + (i * 7) % 4):
        out.append({"member_number": f"{tenant.upper()}-{j + 1:04d}",
                    "name": f"{FIRST[(i + j) % 12]} {tenant[-3:]}{j}",
                    "sex": "male" if (i + 2 * j) % 3 == 0 else "female", "joined_on": "2022-03-01",
                    "household_size": 2 + (i + j) % 6, "area": "urban" if (i + j) % 2 else "rural",
                    "b40": (i * j) % 3 != 1, "programme_consent": True})
    return out


async def _register(platform_url: str) -> tuple[dict[str, str], str]:
    """The 100 cooperatives, a field officer key each, and the programme officer's key."""
    conn = await connect(platform_url)
    try:
        await migrate_platform(conn)
        keys = {}
        for tenant, name in cooperatives():
            await create_tenant(conn, tenant, name)
            keys[tenant] = (await issue_key(conn, tenant, Role.FIELD_OFFICER, label="dashboard-100")).secret
        officer = await issue_key(conn, "kop-001", Role.PROGRAMME_OFFICER, label="dashboard-100",
                                  subject=PROGRAMME)
    finally:
        await conn.close()
    return keys, officer.secret


async def _load_members(members_url: str, keys: dict[str, str]) -> int:
    sem = asyncio.Semaphore(6)
    async with httpx.AsyncClient(base_url=members_url, timeout=30) as client:
        async def one(tenant: str, body: dict[str, Any]) -> None:
            async with sem:
                r = await client.post("/members", json=body, headers={
                    "X-API-Key": keys[tenant], "Idempotency-Key": f"d100-{body['member_number']}"})
                assert r.status_code == 201, r.text

        jobs = [one(tenant, body)
                for i, (tenant, _) in enumerate(cooperatives()) for body in members_of(i, tenant)]
        await asyncio.gather(*jobs)
    return len(jobs)


def api(base_url: str, key: str) -> dict[str, Any]:
    r = httpx.get(f"{base_url}/reports/dashboard", headers={"X-API-Key": key}, timeout=120)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def programme_100(pg: PostgresHandle,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """(reporting URL, programme officer key, members registered): the members and reporting services as
    processes on real PostgreSQL; loans and sanitation have (empty) event logs only."""
    urls = {s: asyncio.run(pg.create_database(s)) for s in SERVICES}
    platform = asyncio.run(pg.create_database("platform100"))

    async def event_logs() -> None:
        for s in ("loans", "sanitation"):
            conn = await connect(urls[s])
            try:
                await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
            finally:
                await conn.close()

    asyncio.run(event_logs())
    keys, officer = asyncio.run(_register(platform))
    consents = {tenant: "2024-01-15" for tenant, _ in cooperatives()}
    programmes = {PROGRAMME: {"name": PROGRAMME_NAME, "cooperatives": consents}}
    logs = tmp_path_factory.mktemp("dashboard-100")
    procs = [ServiceProcess(s, service_env(s, urls, platform, kafka=None,
                                           extra={"REPORTING_PROGRAMMES": json.dumps(programmes)}),
                            logs / f"{s}.log").start() for s in ("members", "reporting")]
    try:
        for p in procs:
            p.wait_ready()
        members, reporting = (p.url for p in procs)
        registered = asyncio.run(_load_members(members, keys))
        deadline = time.monotonic() + 120
        while True:
            body = api(reporting, officer)
            if body["headline"]["members"] == registered and body["freshness"]["lag_events"] == 0:
                break
            assert time.monotonic() < deadline, f"reporting lags: {body['headline']}, {body['freshness']}"
            time.sleep(1.0)
        yield reporting, officer, registered
    finally:
        for p in procs:
            p.stop()


# ------------------------------------------------------------------------------------------------ page


ROWS_JS = """Array.from(document.querySelectorAll('table.bycoop tbody tr[data-cooperative]'))
  .map(tr => tr.dataset.cooperative)"""
CELLS_JS = """Array.from(document.querySelectorAll('table.bycoop td[data-field]'))
  .map(td => [td.dataset.cooperative, td.dataset.field, td.textContent, td.dataset.value])"""
GROUPS = BYCOOP_GROUPS
Result = tuple[str, str, int]


def text(b: Chromium, element_id: str) -> str:
    value: str = b.js(f"document.getElementById('{element_id}').textContent")
    return value


def query(b: Chromium, selector: str, expression: str) -> Any:
    """``expression`` of the first element matching ``selector`` (as ``e``)."""
    return b.js(f"(e => {expression})(document.querySelector({json.dumps(selector)}))")


def aria_sort(b: Chromium, key: str) -> str | None:
    value: str | None = query(b, f"button.sort[data-sort='{key}']", "e.closest('th').getAttribute('aria-sort')")
    return value


def figure(x: dict[str, Any], field: str) -> Any:
    section, key = field.split(".")
    return x[section][key]


def check_cells(b: Chromium, body: dict[str, Any], lang: str) -> int:
    """Every figure the table shows is the API's (the text in the page's language, and the raw value);
    returns how many it shows."""
    figures = {c["scope"]["id"]: c for c in body["by_cooperative"]} | {"total": body}
    cells = b.js(CELLS_JS)
    for coop, field, shown_text, raw in cells:
        value = figure(figures[coop], field)
        assert shown_text == bycoop_shown(KINDS[field], value, lang), (coop, field, shown_text, value)
        assert (raw == "" and value is None) or float(raw) == float(value), (coop, field, raw, value)
    return len(cells)


def disabled(b: Chromium, element_id: str) -> bool:
    return bool(b.js(f"document.getElementById('{element_id}').disabled"))


def first_page(b: Chromium) -> None:
    while not disabled(b, "bycoop-prev"):
        b.click("#bycoop-prev")


def pages(b: Chromium) -> list[list[str]]:
    """The rows of every page, from the first (the table is left on its last page)."""
    first_page(b)
    out = [b.js(ROWS_JS)]
    while not disabled(b, "bycoop-next"):
        b.click("#bycoop-next")
        out.append(b.js(ROWS_JS))
    return out


def column(b: Chromium, field: str) -> list[float | None]:
    """The raw values of one column across every page, in page order (the total row left out)."""
    values: list[float | None] = []
    first_page(b)
    while True:
        values += b.js(f"""Array.from(document.querySelectorAll(
                               'table.bycoop tbody.coop-body td[data-field="{field}"]'))
                           .map(td => td.dataset.value === '' ? null : Number(td.dataset.value))""")
        if disabled(b, "bycoop-next"):
            return values
        b.click("#bycoop-next")


def search(b: Chromium, text: str) -> None:
    """What typing does: the box's value changes and an input event follows."""
    b.js(f"(() => {{ const s = document.getElementById('bycoop-search'); s.value = {json.dumps(text)};"
         " s.dispatchEvent(new Event('input', {bubbles: true})); })()")


def fits(b: Chromium) -> dict[str, int]:
    """The widths that matter: the table's box and its content, the panel, the page and the window."""
    sizes: dict[str, int] = b.js("""({table: document.getElementById('bycoop').scrollWidth,
        box: document.getElementById('bycoop').clientWidth,
        panel: Math.round(document.getElementById('bycoop-panel').getBoundingClientRect().right),
        page: document.documentElement.scrollWidth, window: window.innerWidth})""")
    return sizes


def viewport(b: Chromium, width: int, height: int = HEIGHT, *, mobile: bool) -> None:
    b.send("Emulation.setDeviceMetricsOverride",
           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def screenshot(b: Chromium, path: Path, width: int, *, mobile: bool) -> tuple[int, int]:
    """The whole page at this width; returns its size in CSS pixels."""
    viewport(b, width, mobile=mobile)
    height = int(b.js("Math.ceil(document.documentElement.scrollHeight)"))
    viewport(b, width, height, mobile=mobile)
    b.js("new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
    shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    viewport(b, width, mobile=mobile)
    return width, height


# ------------------------------------------------------------------------------------------------ tests


def test_programme_of_100_cooperatives_one_row_each(browser: Chromium, programme_100: Result) -> None:
    url, key, registered = programme_100
    open_dashboard(browser, url, key)
    body = api(url, key)
    names = {c["scope"]["id"]: c["scope"]["name"] for c in body["by_cooperative"]}
    assert body["scope"]["kind"] == "programme" and len(names) == N
    assert body["headline"]["members"] == registered
    assert sorted(names.values()) == sorted(name for _, name in cooperatives())

    # the header names the programme and counts its cooperatives; the names are in the table, not here
    header = query(browser, ".titlebar > div", "e.innerText").strip()
    assert text(browser, "scope-name") == PROGRAMME_NAME
    assert text(browser, "scope-members") == "100 koperasi ikut"
    assert len(header) <= len(PROGRAMME_NAME) + 40, header
    assert not [n for n in names.values() if n in header], header
    assert query(browser, ".titlebar", "e.getBoundingClientRect().height") < 120

    # one row per cooperative, the programme total first, 20 cooperatives a page
    everything = pages(browser)
    assert [len(p) for p in everything] == [PAGE + 1] * (N // PAGE)
    assert all(p[0] == "total" for p in everything), "the programme total is the first row of every page"
    rows = [r for p in everything for r in p[1:]]
    assert len(rows) == len(set(rows)) == N and set(rows) == set(names)
    assert len({*rows, "total"}) == N + 1  # 101 rows: the total and the 100
    assert [c["scope"]["id"] for c in body["by_cooperative"]] == rows  # unsorted: the API's order
    assert text(browser, "bycoop-range") == "81–100 dari 100"
    assert text(browser, "bycoop-page") == "Halaman 5 dari 5"
    browser.click("#bycoop-prev")
    assert text(browser, "bycoop-range") == "61–80 dari 100"
    first_page(browser)
    assert text(browser, "bycoop-range") == "1–20 dari 100"
    assert text(browser, "bycoop-page") == "Halaman 1 dari 5"
    assert query(browser, "table.bycoop tbody tr", "e.dataset.cooperative") == "total"
    assert query(browser, "table.bycoop tr.total th", "e.textContent") == "Total program100 koperasi ikut"
    background = "getComputedStyle(e).backgroundColor"
    assert query(browser, "table.bycoop tr.total td", background) != \
        query(browser, "table.bycoop tr[data-cooperative='kop-001'] td", background)

    # every column group: the figures shown are the API's, and the table fits its panel
    for group in GROUPS:
        browser.click(f"#bycoop-groups [data-group={group}]")
        assert query(browser, "table.bycoop", "e.dataset.group") == group
        assert query(browser, f"#bycoop-groups [data-group={group}]", "e.getAttribute('aria-pressed')") == "true"
        assert check_cells(browser, body, "id") >= 21 * 2
        sizes = fits(browser)
        assert sizes["table"] <= sizes["box"] and sizes["page"] <= sizes["window"], (group, sizes)
        assert browser.js("document.querySelectorAll('table.bycoop thead th').length") <= 11, group
    browser.click("#bycoop-groups [data-group=summary]")

    # sorting by a number: every page in the order of the API's numbers, both ways, aria-sort says which
    by_id = {c["scope"]["id"]: c for c in body["by_cooperative"]}
    for field in ("headline.members", "headline.women_pct"):
        values = [figure(c, field) for c in body["by_cooperative"]]
        assert len(set(values)) > 3, (field, values)  # a sort that shows something
        browser.click(f"button.sort[data-sort='{field}']")
        assert aria_sort(browser, field) == "descending"
        assert browser.js("document.querySelectorAll('table.bycoop th[aria-sort]').length") == 1
        assert column(browser, field) == sorted(values, reverse=True)
        for p in pages(browser):
            assert p[0] == "total"
            on_page = [figure(by_id[r], field) for r in p[1:]]
            assert on_page == sorted(on_page, reverse=True)
        browser.click(f"button.sort[data-sort='{field}']")
        assert aria_sort(browser, field) == "ascending"
        assert column(browser, field) == sorted(values)
        assert text(browser, "bycoop-range").startswith("81–100")  # column() leaves the last page
    browser.click("button.sort[data-sort='name']")
    assert aria_sort(browser, "name") == "ascending" and aria_sort(browser, "headline.women_pct") is None
    assert text(browser, "bycoop-range").startswith("1–20")  # a new order starts at page 1
    assert [names[r] for r in browser.js(ROWS_JS)[1:]] == sorted(names.values(), key=str.casefold)[:PAGE]
    assert check_cells(browser, body, "id") == 21 * 9

    # search by name: case does not matter, the total stays, paging follows the matches
    browser.type_into("#bycoop-search", "berkah")  # typed, then Enter: the page filters and stays
    matched = browser.js(ROWS_JS)
    assert matched[0] == "total" and len(matched) == 11
    assert set(matched[1:]) == {t for t, n in names.items() if "berkah" in n.lower()}
    assert text(browser, "bycoop-range") == "1–10 dari 10 yang cocok (semua: 100)"
    assert browser.js("document.body.dataset.state") == "ready" and "?" not in browser.js("location.href")
    assert browser.js("document.getElementById('bycoop-pages').hidden") is True
    one = names["kop-023"]
    search(browser, one[:-2].upper())
    assert [names[r] for r in browser.js(ROWS_JS)[1:]] == [one]
    search(browser, "tidak ada yang begini")
    assert browser.js(ROWS_JS) == ["total"]
    assert "tidak ada yang begini" in query(browser, "table.bycoop tr.empty-row", "e.textContent")
    assert text(browser, "bycoop-range") == "0–0 dari 0 yang cocok (semua: 100)"
    search(browser, "")
    assert text(browser, "bycoop-range") == "1–20 dari 100"

    # the desktop screenshot: sorted by name, page 1
    browser.js("document.activeElement.blur(); window.scrollTo(0, 0)")
    size = screenshot(browser, ARTIFACTS / "dashboard-programme-100.png", WIDTH, mobile=False)
    assert size[1] < 4000, size

    # English: the same table with English labels and number formats; the chosen order stays
    browser.click("[data-lang=en]")
    browser.wait_for("document.documentElement.lang === 'en'")
    assert text(browser, "scope-members") == "100 participating cooperatives"
    assert text(browser, "bycoop-range") == "1–20 of 100" and text(browser, "bycoop-page") == "Page 1 of 5"
    assert query(browser, "table.bycoop tr.total .total-label", "e.textContent") == "Programme total"
    assert aria_sort(browser, "name") == "ascending"
    assert query(browser, "table.bycoop th.name button", "e.textContent").startswith("Cooperative")
    assert check_cells(browser, body, "en") == 21 * 9
    search(browser, "tirta")
    assert text(browser, "bycoop-range") == "1–10 of 10 matching (all: 100)"
    assert browser.script_errors() == []


def test_programme_of_100_cooperatives_on_a_phone(browser: Chromium, programme_100: Result) -> None:
    url, key, _ = programme_100
    open_dashboard(browser, url, key)
    viewport(browser, PHONE, mobile=True)
    browser.goto(f"{url}/dashboard")  # the key is kept in the tab: the page loads straight away
    browser.wait_for("document.body.dataset.state === 'ready'")
    assert browser.js("window.innerWidth") == PHONE
    for group in GROUPS:
        browser.click(f"#bycoop-groups [data-group={group}]")
        sizes = fits(browser)
        # the page never scrolls sideways; a table wider than the phone scrolls inside its own box
        assert sizes["page"] <= PHONE and sizes["panel"] <= PHONE and sizes["box"] < PHONE, (group, sizes)
        assert query(browser, "#bycoop", "getComputedStyle(e).overflowX") == "auto"
    browser.click("#bycoop-groups [data-group=summary]")
    sizes = fits(browser)
    assert sizes["table"] > sizes["box"], f"nine figures do not fit 412 px: the box scrolls ({sizes})"
    # the cooperative's name stays in view when the figures scroll
    browser.js("document.getElementById('bycoop').scrollLeft = 200")
    name_left = query(browser, "table.bycoop tr[data-cooperative] th.name", "e.getBoundingClientRect().left")
    box_left = query(browser, "#bycoop", "e.getBoundingClientRect().left")
    assert abs(name_left - box_left) < 2, (name_left, box_left)
    browser.js("document.getElementById('bycoop').scrollLeft = 0")
    # the pager's buttons stay inside the panel
    panel_right = query(browser, "#bycoop-panel", "e.getBoundingClientRect().right")
    assert query(browser, "#bycoop-next", "e.getBoundingClientRect().right") <= panel_right
    rows = browser.js(ROWS_JS)
    assert rows[0] == "total" and len(rows) == PAGE + 1
    browser.js("window.scrollTo(0, 0)")
    screenshot(browser, ARTIFACTS / "dashboard-programme-100-phone.png", PHONE, mobile=True)
    assert browser.js("document.documentElement.scrollWidth") <= PHONE
    assert browser.script_errors() == []


def large_figures(body: dict[str, Any]) -> dict[str, Any]:
    """The API's answer with the figures of a programme in its fifth year (billions of rupiah per
    cooperative, hundreds of billions in total): the members-only data above has Rp 0 in every money
    column, which would make the width checks too easy."""
    big: dict[str, Any] = json.loads(json.dumps(body))
    for i, x in enumerate([big, *big["by_cooperative"]]):
        n = N if i == 0 else 1
        x["headline"]["people_reached"] = (98_765 - 37 * i) * n
        x["financing"].update(
            applied=(987 - i) * n, approved=(876 - i) * n, disbursed_count=(765 - i) * n,
            disbursed_value=(9_876_543_210 - 1_234_567 * i) * n, outstanding=(8_765_432_109 - 2_345_678 * i) * n,
            par1_pct=99.95 - i / 3, par30_pct=45.55 - i / 7, par90_pct=12.25 + i / 9,
            repayment_rate_pct=100 - i / 11, social_fund=(98_765_432 + 4_321 * i) * n,
            social_fund_imposed=(98_765_432 + 4_321 * i) * n, social_fund_received=(87_654_321 + 3_210 * i) * n,
            social_fund_outstanding=(11_111_111 + 1_111 * i) * n)
        x["construction"].update(first_time_pass_rate_pct=66.65 + i / 5, median_days_order_to_handover=123.5 + i)
        x["desludging"].update(due=(9_876 - i) * n, overdue=(987 - i) * n, emptied=(8_765 - i) * n,
                               m3_removed=(12_345.6 - i) * n, m3_acknowledged=(11_234.5 - i) * n)
    return big


def test_programme_table_fits_its_panel_with_large_figures(browser: Chromium, programme_100: Result) -> None:
    url, key, _ = programme_100
    big = large_figures(api(url, key))
    browser.open(f"{url}/dashboard")
    browser.wait_for("document.body.dataset.state === 'key'")
    browser.answer_dashboard(key, 200, json.dumps(big).encode(), timeout=20)
    browser.wait_for("document.body.dataset.state === 'ready'")
    browser.send("Fetch.disable")
    for lang in ("id", "en"):
        browser.click(f"[data-lang={lang}]")
        browser.wait_for(f"document.documentElement.lang === '{lang}'")
        for group in GROUPS:
            browser.click(f"#bycoop-groups [data-group={group}]")
            assert check_cells(browser, big, lang) > 21
            for column_key in browser.js("Array.from(document.querySelectorAll('button.sort'), b => b.dataset.sort)"):
                browser.click(f"button.sort[data-sort='{column_key}']")  # the sorted column's arrow widens it
                sizes = fits(browser)
                assert sizes["table"] <= sizes["box"], (lang, group, column_key, sizes)
                assert sizes["page"] <= sizes["window"], (lang, group, column_key, sizes)
    assert browser.script_errors() == []
