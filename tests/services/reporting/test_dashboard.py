"""The reporting dashboard in headless Chromium (Debian's ``chromium``), driven over the DevTools protocol.

The page is served by the reporting app under uvicorn on a loopback port; the test types the API key into
the page as a manager would, then checks every figure the page shows (text and the raw value behind it,
and the SVG geometry of the charts) against the JSON the API returns for the same key and date, in
Bahasa Indonesia and in English, and keeps a full-page screenshot of each in ``artifacts/``.

Chromium is installed here when it is missing (``apt-get install chromium``, as CI does); when that is
impossible the test fails with the reason. It never skips.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from deploy.local.demo import DEMO_KEYS, key_for, load_all_demo
from deploy.local.demos.reporting import DEMO_TARGETS
from deploy.local.infra import PostgresHandle
from deploy.local.services import SERVICES, ServiceProcess, service_env
from shared.tenancy import Role
from tests.helpers import quiescent

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
#: the flags this machine needs, plus the DevTools pipe (no websocket library needed)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-pipe", "--hide-scrollbars", "--window-size=1280,900"]
WIDTH, HEIGHT = 1280, 900
#: installing chromium on a fresh machine (apt-get update, ~100 MB) may take longer than the default timeout
pytestmark = pytest.mark.timeout(900)


# ---------------------------------------------------------------------------------------------- Chromium


#: a Chromium or Chrome found on PATH under one of these names serves as well as Debian's
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")


def find_chromium() -> Path | None:
    """The browser to drive: ``WASHFIN_CHROMIUM`` (any Chromium or Chrome executable) when set, else
    Debian's ``/usr/bin/chromium``, else the first of ``BROWSER_NAMES`` on PATH; None when there is none."""
    named = os.environ.get("WASHFIN_CHROMIUM")
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"WASHFIN_CHROMIUM={named} is not an executable file: point it at a Chromium or "
                        "Chrome")
        return path
    if CHROMIUM.exists():
        return CHROMIUM
    for name in BROWSER_NAMES:
        if found := shutil.which(name):
            return Path(found)
    return None


def ensure_chromium() -> Path:
    """A Chromium (``find_chromium``), else Debian's chromium installed with apt-get; a clear failure when
    that cannot be done."""
    if (found := find_chromium()) is not None:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail("the dashboard test needs a Chromium or Chrome, and apt-get is not on this machine; "
                    "install one and put it on PATH or in WASHFIN_CHROMIUM")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        # CI does the same; the lock timeout rides out a concurrent apt run instead of failing at once
        done = subprocess.run("apt-get update && apt-get install -y -o DPkg::Lock::Timeout=120 chromium",
                              shell=True, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("installing chromium (apt-get install -y chromium) took longer than 15 minutes")
    if done.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"could not install chromium with apt-get (exit {done.returncode}); the dashboard test needs "
                    f"/usr/bin/chromium.\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return CHROMIUM


class Chromium:
    """One headless Chromium and one page, driven over the DevTools protocol on --remote-debugging-pipe
    (messages are JSON ended by a NUL byte; the browser reads fd 3 and writes fd 4)."""

    def __init__(self, executable: Path, profile: Path) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds() -> None:  # runs in the child between fork and exec: put the pipe ends on fds 3 and 4
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen([str(executable), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out, self._in = to_browser_w, from_browser_r
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self.events: list[dict[str, Any]] = []
        self.paused: list[dict[str, Any]] = []  # Fetch.requestPaused events not yet answered

    def _message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            if select.select([self._in], [], [], left)[0]:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()})")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message.get("method") == "Fetch.requestPaused":
            self.paused.append(message["params"])

    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False,
             timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session and not browser:
            command["sessionId"] = self._session
        os.write(self._out, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message(timeout)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self._event(message)

    def answer_dashboard(self, key: str, status: int, body: bytes, timeout: float = 10) -> None:
        """``key`` typed in with the dashboard's API call intercepted, and answered with ``status`` and
        ``body`` (JSON) instead of the service (interception stays on until ``Fetch.disable``)."""
        self.send("Fetch.enable", {"patterns": [{"urlPattern": "*/reports/dashboard*"}]})
        self.type_into("#api-key", key)
        deadline = time.monotonic() + timeout
        while not self.paused:
            assert time.monotonic() < deadline, "the page did not ask the API"
            self.pump()
        request = self.paused.pop()
        self.send("Fetch.fulfillRequest", {"requestId": request["requestId"], "responseCode": status,
                                           "responseHeaders": [{"name": "Content-Type", "value": "application/json"}],
                                           "body": base64.b64encode(body).decode()})

    def pump(self, seconds: float = 0.05) -> None:
        """Read the events that arrived meanwhile (e.g. paused requests)."""
        try:
            while True:
                self._event(self._message(seconds))
        except TimeoutError:
            pass

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        self._session = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                                  browser=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        self.goto(url)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails'].get('exception', {}).get('description')}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
                if last:
                    return last
            except RuntimeError as e:  # the page is between documents
                last = e
            time.sleep(0.1)
        raise AssertionError(f"not true within {timeout}s: {expression} (last: {last!r}); page state "
                             f"{self.js('document.body && document.body.dataset.state')!r}")

    def type_into(self, selector: str, text: str, *, enter: bool = True) -> None:
        """Focus, type like a keyboard would, and press Enter."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})
        if enter:
            key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **key})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", **key})

    def click(self, selector: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def set_width(self, width: int, height: int = HEIGHT) -> None:
        """The viewport of a desktop (WIDTH) or of a phone (narrower: mobile emulation)."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 800})

    def screenshot(self, path: Path, width: int = WIDTH) -> None:
        """The whole page, ``width`` px wide (the viewport is put back after)."""
        height = int(self.js("Math.ceil(document.documentElement.scrollHeight)"))
        self.set_width(width, height)
        self.js("new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        png = base64.b64decode(shot["data"])
        # a PNG of the page at that width and its whole height (IHDR: width, height as 32-bit big-endian)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", path
        shot_width, shot_height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (shot_width, shot_height) == (width, max(height, HEIGHT)), (path, shot_width, shot_height)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        self.set_width(width)

    def script_errors(self) -> list[str]:
        """Uncaught exceptions and console errors the page produced so far."""
        self.pump()
        errors = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                errors.append(str(e["params"]["exceptionDetails"].get("exception", {}).get("description")))
            elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                entry = e["params"]["entry"]
                errors.append(f"{entry.get('url', '')}: {entry['text']}")
        return errors

    def close(self) -> None:
        try:
            self.send("Browser.close", browser=True, timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    return ensure_chromium()


@pytest.fixture
def browser(chromium_executable: Path) -> Iterator[Chromium]:
    profile = Path(tempfile.mkdtemp(prefix="washfin-chromium-"))  # a fresh profile for every test
    b = Chromium(chromium_executable, profile)
    try:
        yield b
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_browser_is_found_by_its_setting_or_on_path(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Debian's /usr/bin/chromium is not, a Chromium or Chrome on PATH or named by WASHFIN_CHROMIUM is
    driven instead (Ubuntu's chromium-browser, Google's Chrome on a developer's machine)."""

    def executable(name: str) -> Path:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return path

    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-such-chromium")
    monkeypatch.delenv("WASHFIN_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    chrome = executable("google-chrome")
    assert find_chromium() == chrome
    assert find_chromium() == chrome == ensure_chromium()
    chromium = executable("chromium-browser")
    assert find_chromium() == chromium, "a Chromium comes before a Chrome"
    mine = executable("my-chromium")
    monkeypatch.setenv("WASHFIN_CHROMIUM", str(mine))
    assert find_chromium() == mine
    monkeypatch.setenv("WASHFIN_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(pytest.fail.Exception, match="WASHFIN_CHROMIUM=.*missing is not an executable file"):
        find_chromium()


# ------------------------------------------------------------------- what the page must show, in Python


def _group(digits: str, sep: str) -> str:
    out = ""
    while len(digits) > 3:
        out, digits = sep + digits[-3:] + out, digits[:-3]
    return digits + out


def _number(value: float, decimals: int, lang: str, *, keep_zeros: bool) -> str:
    """Intl.NumberFormat('id-ID' | 'en-GB'): ICU rounds the shortest decimal form of the number (what
    Python's repr gives), half away from zero, so 256.45 shows as 256.5."""
    q = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    whole, _, frac = f"{abs(q):f}".partition(".")
    if not keep_zeros:
        frac = frac.rstrip("0")
    group, point = (".", ",") if lang == "id" else (",", ".")
    return sign + _group(whole, group) + (point + frac if frac else "")


def shown(kind: str, value: Any, lang: str) -> str:
    """The text the page shows for a value of this kind."""
    if kind == "rate":  # the repayment rate: null when nothing fell due (not applicable)
        return (("tidak berlaku" if lang == "id" else "not applicable") if value is None
                else shown("pct", value, lang))
    if value is None:
        return "—"
    if kind == "int":
        return _number(value, 0, lang, keep_zeros=False)
    if kind == "money":
        return "Rp " + _number(value, 0, lang, keep_zeros=False)
    if kind == "pct":
        return _number(value, 1, lang, keep_zeros=True) + "%"
    if kind == "m3":
        return _number(value, 1, lang, keep_zeros=False) + " m³"
    if kind == "days":
        return _number(value, 1, lang, keep_zeros=False) + (" hari" if lang == "id" else " days")
    raise ValueError(kind)


def bycoop_shown(kind: str, value: Any, lang: str) -> str:
    """The text of a cell of the by-cooperative table: money, m³ and days carry their unit in the column's
    header, so the cell shows the bare number."""
    if kind == "rate":
        return shown(kind, value, lang)
    if value is None:
        return "—"
    if kind == "money":
        return shown("int", value, lang)
    if kind in ("m3", "days"):
        return _number(value, 1, lang, keep_zeros=False)
    return shown(kind, value, lang)


#: the by-cooperative table's column groups (the buttons above it)
BYCOOP_GROUPS = ("summary", "headline", "financing", "social_fund", "construction", "desludging")


HEADLINE = {"members": "int", "households": "int", "people_reached": "int", "women_pct": "pct", "b40_pct": "pct",
            "urban_pct": "pct", "safely_managed_sanitation_households": "int"}
FINANCING = {"applied": "int", "approved": "int", "disbursed_count": "int", "disbursed_value": "money",
             "outstanding": "money", "par1_pct": "pct", "par30_pct": "pct", "par90_pct": "pct",
             "repayment_rate_pct": "rate", "social_fund_imposed": "money", "social_fund_received": "money",
             "social_fund_outstanding": "money"}
DESLUDGING = {"due": "int", "overdue": "int", "emptied": "int", "emptyings_in_window": "int", "m3_removed": "m3",
              "m3_acknowledged": "m3"}
CONSTRUCTION = {"first_time_pass_rate_pct": "pct", "median_days_order_to_handover": "days"}
HEADINGS = {"id": {"headline-heading": "Angka utama", "ladder-heading": "Tangga akses JMP: awal dan sekarang",
                   "financing-heading": "Pembiayaan"},
            "en": {"headline-heading": "Headline figures", "ladder-heading": "JMP access ladder: baseline and now",
                   "financing-heading": "Financing"}}

FIELDS_JS = """Array.from(document.querySelectorAll('#dashboard [data-field]:not([data-cooperative])'))
  .map((e) => [e.dataset.field, e.textContent.trim(), e.dataset.value])"""
MARKS_JS = """Array.from(document.querySelectorAll('[data-chart="%s"] svg .mark')).map((m) => {
  const b = m.getBBox();
  return {series: m.dataset.series, category: m.dataset.category, value: Number(m.dataset.value),
          width: b.width, height: b.height, tag: m.tagName, cy: Number(m.getAttribute('cy'))};
})"""


def expected_fields(body: dict[str, Any], lang: str) -> dict[str, tuple[str, Any]]:
    """data-field -> (text shown, raw value) for every figure of the top-level scope."""
    fields: dict[str, tuple[str, Any]] = {}
    for section, kinds in (("headline", HEADLINE), ("financing", FINANCING), ("desludging", DESLUDGING),
                           ("construction", CONSTRUCTION)):
        for key, kind in kinds.items():
            value = body[section][key]
            fields[f"{section}.{key}"] = (shown(kind, value, lang), value)
    for status, n in body["construction"]["by_status"].items():
        fields[f"construction.by_status.{status}"] = (shown("int", n, lang), n)
    return fields


def ago_words(seconds: int, lang: str) -> str:
    """What the freshness panel says for an age in seconds (the page's own count, data-age-seconds)."""
    if seconds < 60:
        return "baru saja" if lang == "id" else "just now"
    for size, id_word, en_word in ((86400, "hari", "day"), (3600, "jam", "hour"), (60, "menit", "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {id_word} lalu" if lang == "id" else f"{n} {en_word}{'' if n == 1 else 's'} ago"
    raise AssertionError(seconds)


#: developer strings the freshness panel must never show (build names, positions, topic names)
DEVELOPER = ("reporting.", "@", "<-", "washfin.", ";")


def check_freshness(b: Chromium, body: dict[str, Any], lang: str) -> None:
    """The freshness panel in words: how long ago the figures last changed, whether every event is counted,
    and that they are the scope's own; no developer string."""
    fresh = body["freshness"]
    panel = b.js("document.getElementById('freshness').textContent")
    assert not any(d in panel for d in DEVELOPER), panel
    last = b.js("(() => { const e = document.querySelector('[data-field=\"freshness.last_event_at\"]');"
                " return [e.textContent, e.dataset.value, e.dataset.ageSeconds]; })()")
    assert (last[1] or None) == fresh["last_event_at"]
    if fresh["last_event_at"]:
        age = int(last[2])
        assert last[0].startswith(f"{ago_words(age, lang)} ("), last
    else:
        assert last[0] == ("belum ada peristiwa" if lang == "id" else "no events yet")
    state = b.js("document.querySelector('[data-field=\"freshness.lag_events\"]').textContent")
    lag = fresh["lag_events"]
    if lag == 0:
        assert state == ("terkini semua peristiwa sudah dihitung" if lang == "id"
                         else "up to date every event is counted"), state
    elif lag is not None:
        assert str(lag) in state and state.startswith("sedang mengejar" if lang == "id" else "catching up"), state
    scope = b.js("document.querySelector('[data-footnote=\"freshness-scope\"]').textContent")
    n = len(body["scope"]["cooperatives"])
    if body["scope"]["kind"] == "programme":
        assert scope == (f"Dihitung dari peristiwa {n} koperasi program ini saja." if lang == "id"
                         else f"Counted from the events of this programme's {n} cooperatives only."), scope
    else:
        assert scope == ("Dihitung dari peristiwa koperasi ini saja." if lang == "id"
                         else "Counted from this cooperative's events only."), scope


NOTES_JS = """Object.fromEntries(['headline-notes', 'targets-notes', 'financing-notes', 'desludging-chart-notes']
  .map((id) => [id, Array.from(document.querySelectorAll('#' + id + ':not([hidden]) li'))
    .map((li) => [li.dataset.footnote, li.dataset.indicator || null, li.textContent])]))"""


def check_notes(b: Chromium, body: dict[str, Any], lang: str) -> None:
    """The footnotes a figure needs: outstanding vs disbursed, which cooperatives each target covers
    (programmes), whose consent the programme figures rest on, and why the desludging chart has no
    'done' bars while the table counts emptied tanks."""
    notes = b.js(NOTES_JS)
    fin = body["financing"]
    [(key, _, text)] = notes["financing-notes"]
    assert key == "outstanding" and text.startswith("¹ "), notes["financing-notes"]
    assert ("sebelum dananya" in text) if lang == "id" else ("before its money is" in text), text
    more = fin["outstanding"] - fin["disbursed_value"]
    if more > 0:
        assert shown("money", more, lang) in text, (text, more)
    else:
        assert "Rp" not in text, text
    assert b.js("document.querySelector('[data-field=\"financing.outstanding\"]').closest('tr')"
                ".querySelector('sup').textContent") == "1"
    programme = body["scope"]["kind"] == "programme"
    names = {c["scope"]["id"]: c["scope"]["name"] for c in body.get("by_cooperative") or []}
    if programme:
        [(key, _, text)] = notes["headline-notes"]
        assert key == "consent" and (("menyetujui" in text) if lang == "id" else ("consented" in text)), text
        assert len(notes["targets-notes"]) == len(body["targets"])
        everyone = body["scope"]["cooperatives"]
        for target, (key, indicator, text) in zip(body["targets"], notes["targets-notes"], strict=True):
            assert indicator == target["indicator"]
            covers = target["cooperatives"]
            if len(covers) < len(everyone):
                assert key == "target-some", (key, text)
                count = (f"oleh {len(covers)} dari {len(everyone)} koperasi" if lang == "id"
                         else f"set by {len(covers)} of the {len(everyone)} cooperatives")
                assert count in text and ", ".join(names[c] for c in covers) in text, text
            else:
                assert key == "target-all", (key, text)
    else:
        assert notes["headline-notes"] == []  # a cooperative's own staff see all its members
        assert [k for k, _, _ in notes["targets-notes"]] == (["target-own"] if body["targets"] else [])
        assert all(t["cooperatives"] == [body["scope"]["id"]] for t in body["targets"])
    des = body["desludging"]
    assert des["emptyings_in_window"] == sum(m["desludging_done"] for m in body["monthly"])
    if des["emptyings_in_window"] == 0 and des["last_emptied_on"]:
        [(key, _, text)] = notes["desludging-chart-notes"]
        day = datetime.fromisoformat(des["last_emptied_on"])
        months = (["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
                   "November", "Desember"] if lang == "id" else
                  ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                   "November", "December"])
        assert key == "desludging-none" and f"{day.day} {months[day.month - 1]} {day.year}" in text, text
    else:
        assert notes["desludging-chart-notes"] == []


def check_page_matches(b: Chromium, body: dict[str, Any], lang: str) -> None:
    """Every figure on the page equals the API's, as text in the page's language and as the raw number."""
    on_page = {field: (text, raw) for field, text, raw in b.js(FIELDS_JS)}
    for field, (text, value) in expected_fields(body, lang).items():
        assert field in on_page, f"{field} is not on the page"
        got_text, got_raw = on_page[field]
        assert got_text == text, f"{field}: page shows {got_text!r}, API says {value!r} -> {text!r} ({lang})"
        if value is None:
            assert got_raw == "", (field, got_raw)
        else:
            assert float(got_raw) == float(value), (field, got_raw, value)
    check_freshness(b, body, lang)
    check_notes(b, body, lang)

    # access ladder: one stacked segment per rung, baseline and now, widths proportional within each bar
    for service in ("water", "sanitation"):
        marks = b.js(MARKS_JS % f"ladder-{service}")
        ladder = body["access_ladder"][service]
        for when in ("baseline", "now"):
            row = {m["series"]: m for m in marks if m["category"] == when}
            total = sum(ladder[when].values())
            if total == 0:
                assert not row, f"{service} {when}: an empty ladder draws no segments"
                continue
            assert {k: int(m["value"]) for k, m in row.items()} == ladder[when], (service, when)
            full = sum(m["width"] for m in row.values())
            for rung, m in row.items():
                assert abs(m["width"] - full * ladder[when][rung] / total) < 0.6, (service, when, rung)

    # monthly bars and the PAR30 line: one mark per month and series, heights proportional to the values
    months = [m["month"] for m in body["monthly"]]
    for chart, series in (("money", ("disbursed", "repaid")), ("desludging", ("desludging_due", "desludging_done"))):
        marks = b.js(MARKS_JS % chart)
        assert len(marks) == len(months) * len(series), chart
        scale = None
        for m in marks:
            month = body["monthly"][months.index(m["category"])]
            assert m["value"] == month[m["series"]], (chart, m)
            if m["value"]:
                scale = scale or m["height"] / m["value"]
                assert abs(m["height"] - scale * m["value"]) < 0.6, (chart, m, scale)
            else:
                assert m["height"] == 0, (chart, m)
    par = b.js(MARKS_JS % "par30")
    assert [(p["category"], p["value"]) for p in par] == [(m["month"], m["par30_pct"]) for m in body["monthly"]]
    if len({p["value"] for p in par}) > 1:  # a higher PAR is drawn higher (smaller y)
        hi, lo = max(par, key=lambda p: p["value"]), min(par, key=lambda p: p["value"])
        assert hi["cy"] < lo["cy"]

    # targets and sludge flow: bar lengths are the percentages
    targets = b.js(MARKS_JS % "targets")
    assert [t["value"] for t in targets] == [t["progress_pct"] for t in body["targets"]]
    flow = b.js(MARKS_JS % "sludge-flow")
    assert {m["category"]: m["value"] for m in flow} == body["desludging"]["sludge_flow_pct"]
    target_texts = b.js("Array.from(document.querySelectorAll('[data-chart=targets] .bar-value'))"
                        ".map(e => e.textContent)")
    for t, text in zip(body["targets"], target_texts, strict=True):
        assert shown("int", t["actual"], lang) in text and shown("int", t["target"], lang) in text, text
        assert shown("pct", t["progress_pct"], lang) in text, text

    # charts are real SVG with an accessible name
    charts = b.js("""Array.from(document.querySelectorAll('figure.chart svg'))
        .map(s => [s.closest('figure').dataset.chart, s.getAttribute('role'), s.getAttribute('aria-label')])""")
    assert {c[0] for c in charts} >= {"targets", "ladder-water", "ladder-sanitation", "money", "par30",
                                      "desludging", "sludge-flow"}
    assert all(role == "img" and label for _, role, label in charts), charts
    for element_id, heading in HEADINGS[lang].items():
        assert b.js(f"document.getElementById('{element_id}').textContent") == heading
    assert b.js("document.documentElement.lang") == lang


def open_dashboard(b: Chromium, base_url: str, key: str) -> None:
    """What a manager does: open the page, type the key once, wait for the figures."""
    b.open(f"{base_url}/dashboard")
    b.wait_for("document.body.dataset.state === 'key'")
    assert b.js("document.getElementById('key-heading').textContent") == "Masuk dengan kunci API"  # default: id
    b.type_into("#api-key", key)
    b.wait_for("document.body.dataset.state === 'ready'")
    # the key lives in this tab's sessionStorage only: never in the URL, never in localStorage
    assert key not in b.js("location.href")
    assert b.js("sessionStorage.getItem('washfin.dashboard.apiKey')") == key
    assert key not in json.dumps(b.js("Object.assign({}, localStorage)"))


# ------------------------------------------------------------------------------------------ the system


BMI, BAIK = "kopsyah-bmi", "koperasi-baik"
PROGRAMME = "iuwash-plus"
PROGRAMMES = {PROGRAMME: {"name": "USAID IUWASH PLUS",
                          "cooperatives": {BMI: "2024-01-15", BAIK: "2024-02-01"}}}
PROGRAMME_KEY = next(k.secret for k in DEMO_KEYS if k.role == Role.PROGRAMME_OFFICER and k.subject == PROGRAMME)
MANAGER_KEY = key_for(BMI, Role.MANAGER)
#: the run command's demo sets these targets (deploy/local/demos/reporting.py), so the target chart has bars
TARGETS = DEMO_TARGETS[BMI]


def api(base_url: str, key: str, as_of: str | None = None) -> dict[str, Any]:
    r = httpx.get(f"{base_url}/reports/dashboard", params={"as_of": as_of} if as_of else None,
                  headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _settled(base_url: str, database_urls: dict[str, str]) -> None:
    """Wait until the services came to rest after the demo (they react to each other's events for a while
    after the last request): every consumer at its sources' ends, twice over (``tests.helpers.quiescent``);
    then reporting's own freshness says so too."""
    asyncio.run(quiescent(database_urls))
    for key in (MANAGER_KEY, PROGRAMME_KEY):
        body = api(base_url, key)
        assert body["freshness"]["lag_events"] == 0, body["freshness"]
    assert api(base_url, MANAGER_KEY)["headline"]["members"] > 0


@pytest.fixture(scope="module")
def reporting_url(pg: PostgresHandle, platform_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The four services as separate processes (uvicorn on free loopback ports, the embedded event source,
    real PostgreSQL), loaded with the run command's demo data through their APIs: what ``make run`` shows."""
    urls = {s: asyncio.run(pg.create_database(s)) for s in SERVICES}
    logs = tmp_path_factory.mktemp("dashboard-services")
    procs = [ServiceProcess(s, service_env(s, urls, platform_url, kafka=None,
                                           extra={"REPORTING_PROGRAMMES": json.dumps(PROGRAMMES)}),
                            logs / f"{s}.log").start() for s in SERVICES]
    try:
        for p in procs:
            p.wait_ready()
        by_name = {p.service: p for p in procs}
        asyncio.run(load_all_demo({p.service: p.url for p in procs}))
        reporting = by_name["reporting"].url
        _settled(reporting, urls)
        yield reporting
    finally:
        for p in procs:
            p.stop()


def _days_ago(days: int) -> str:
    return (datetime.now(ZoneInfo("Asia/Jakarta")).date() - timedelta(days=days)).isoformat()


# ------------------------------------------------------------------------------------------------ tests


def test_page_and_assets_ship_with_the_service(reporting_url: str) -> None:
    page = httpx.get(f"{reporting_url}/dashboard", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("dashboard.js", "charts.js", "i18n.js", "dashboard.css"):
        assert f"/dashboard/static/{asset}?v=" in page.text
        r = httpx.get(f"{reporting_url}/dashboard/static/{asset}", timeout=10)
        assert r.status_code == 200, asset
        text = r.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace name, not a download
        assert "http://" not in text and "https://" not in text, f"{asset} must not load anything from elsewhere"
    assert httpx.get(f"{reporting_url}/dashboard/static/..%2Fsettings.py", timeout=10).status_code == 404
    assert httpx.get(f"{reporting_url}/dashboard/static/routes.py", timeout=10).status_code == 404


def test_manager_sees_the_api_figures_in_both_languages(browser: Chromium, reporting_url: str) -> None:
    open_dashboard(browser, reporting_url, MANAGER_KEY)
    as_of = browser.js("document.getElementById('as-of').value")
    body = api(reporting_url, MANAGER_KEY, as_of)
    assert body["scope"] == {"kind": "cooperative", "id": BMI, "name": "Kopsyah BMI (Tangerang)", "cooperatives": [BMI]}
    assert len(body["targets"]) == len(TARGETS) and body["headline"]["members"] > 0  # the figures are not all empty
    assert browser.js("document.getElementById('scope-name').textContent") == "Kopsyah BMI (Tangerang)"
    assert browser.js("document.getElementById('bycoop-panel').hidden") is True
    check_page_matches(browser, body, "id")
    browser.screenshot(ARTIFACTS / "dashboard-id.png")

    browser.click("[data-lang=en]")
    browser.wait_for("document.documentElement.lang === 'en'")
    check_page_matches(browser, body, "en")
    browser.screenshot(ARTIFACTS / "dashboard-en.png")
    # every label exists in both languages
    assert browser.js("Object.keys(WF_I18N.id).sort().join()") == browser.js("Object.keys(WF_I18N.en).sort().join()")

    # the language is remembered, and the key is asked for once per tab
    browser.goto(f"{reporting_url}/dashboard")
    browser.wait_for("document.body.dataset.state === 'ready'")
    check_page_matches(browser, body, "en")

    # an earlier date from the picker: the page asks the API for that date and shows its figures
    earlier = _days_ago(150)
    browser.js(f"const i = document.getElementById('as-of'); i.value = '{earlier}';"
               " i.dispatchEvent(new Event('change'))")
    browser.wait_for(f"document.body.dataset.state === 'ready' && document.getElementById('as-of').value === "
                     f"'{earlier}' && new URL(location.href).searchParams.get('as_of') === '{earlier}'")
    before = api(reporting_url, MANAGER_KEY, earlier)
    assert before["as_of"] == earlier
    check_page_matches(browser, before, "en")

    # a date before any instalment fell due: no repayment rate ("not applicable", never 100 %), in both languages
    first = "2020-01-31"
    browser.js(f"{{ const i = document.getElementById('as-of'); i.value = '{first}';"
               " i.dispatchEvent(new Event('change')); }")
    browser.wait_for(f"document.body.dataset.state === 'ready' && document.getElementById('as-of').value === '{first}'")
    empty = api(reporting_url, MANAGER_KEY, first)
    assert empty["financing"]["repayment_rate_pct"] is None and empty["financing"]["repayment_rate_not_applicable"]
    check_page_matches(browser, empty, "en")
    rate = "document.querySelector('[data-field=\"financing.repayment_rate_pct\"]').textContent"
    assert browser.js(rate) == "not applicable"
    browser.click("[data-lang=id]")
    browser.wait_for("document.documentElement.lang === 'id'")
    check_page_matches(browser, empty, "id")
    assert browser.js(rate) == "tidak berlaku"
    assert browser.script_errors() == []


#: every pair of chart texts whose boxes overlap, and every chart text reaching outside its chart, measured in
#: the page (getBoundingClientRect, CSS pixels)
OVERLAPS_JS = """(() => {
  const out = [];
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    const chart = svg.closest('figure').dataset.chart, box = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll('text')).map((t) => [t.textContent, t.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0 && r.height > 0);
    texts.forEach(([a, r], i) => {
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) out.push([chart, a, '(outside the chart)']);
      for (const [b, q] of texts.slice(i + 1)) {
        const w = Math.min(r.right, q.right) - Math.max(r.left, q.left);
        const h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
        if (w > 0.5 && h > 0.5) out.push([chart, a, b]);
      }
    });
  }
  return out;
})()"""
#: what a phone's width must give: charts drawn to the screen, no sideways scrolling of the page
PHONE_JS = """({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
  charts: Array.from(document.querySelectorAll('figure.chart svg')).map((s) => s.viewBox.baseVal.width),
  labels: Array.from(document.querySelectorAll('[data-chart=money] svg text.axis-label tspan:first-child'))
    .map((t) => t.textContent)})"""


def check_readable_at(b: Chromium, width: int) -> dict[str, Any]:
    """At this width: the charts are redrawn to it, the page does not scroll sideways, and no chart label
    overlaps another or leaves its chart."""
    b.set_width(width)
    b.wait_for(f"Array.from(document.querySelectorAll('figure.chart svg')).every((s) => s.viewBox.baseVal.width <= {width})"
               " && document.body.dataset.state === 'ready'")
    b.js("new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))")
    phone: dict[str, Any] = b.js(PHONE_JS)
    assert phone["scroll"] <= phone["inner"] == width, phone
    assert b.js(OVERLAPS_JS) == [], f"chart labels overlap at {width} px"
    return phone


def test_the_page_reads_on_a_phone(browser: Chromium, reporting_url: str) -> None:
    """At a phone's 412 px (and the narrowest common phone's 360 px), in both languages: no chart label
    overprints another (measured from the DOM), months do not run together, nothing scrolls sideways; the
    desktop layout has no overlap either. Screenshots of both widths in both languages go to artifacts/."""
    open_dashboard(browser, reporting_url, MANAGER_KEY)
    as_of = browser.js("document.getElementById('as-of').value")
    body = api(reporting_url, MANAGER_KEY, as_of)
    for lang in ("id", "en"):
        if lang == "en":
            browser.click("[data-lang=en]")
            browser.wait_for("document.documentElement.lang === 'en'")
        check_readable_at(browser, WIDTH)
        for width in (412, 360):
            phone = check_readable_at(browser, width)
            # fewer month labels than months where they would not fit, the latest month always named
            assert 0 < len(phone["labels"]) < len(body["monthly"]), phone["labels"]
            check_page_matches(browser, body, lang)
        check_readable_at(browser, 412)
        browser.screenshot(ARTIFACTS / f"dashboard-phone-{lang}.png", 412)
        check_readable_at(browser, WIDTH)
    assert browser.script_errors() == []


def test_the_desludging_chart_agrees_with_its_table(browser: Chromium, reporting_url: str) -> None:
    """The demo's three emptyings are in March, May and August 2024. As of 31 August 2024 the chart's
    'done' bars add up to the table's emptyings in these 12 months, and to its tanks emptied; as of 6 May
    2024 the emptying of 7 May is not counted yet, in the chart or the table. Today none lies in the
    12 months shown, and a note under the chart says so and when the last one was."""
    open_dashboard(browser, reporting_url, MANAGER_KEY)
    for day, in_window, emptied in (("2024-08-31", 3, 3), ("2024-05-06", 1, 1)):
        browser.js(f"{{ const i = document.getElementById('as-of'); i.value = '{day}';"
                   " i.dispatchEvent(new Event('change')); }")
        browser.wait_for(f"document.body.dataset.state === 'ready' && document.getElementById('as-of').value === '{day}'")
        body = api(reporting_url, MANAGER_KEY, day)
        done = {m["month"]: m["desludging_done"] for m in body["monthly"]}
        assert sum(done.values()) == body["desludging"]["emptyings_in_window"] == in_window, done
        assert body["desludging"]["emptied"] == emptied
        marks = browser.js(MARKS_JS % "desludging")
        assert sum(m["value"] for m in marks if m["series"] == "desludging_done") == in_window
        shown_in_window = browser.js("document.querySelector('[data-field=\"desludging.emptyings_in_window\"]')"
                                     ".dataset.value")
        assert int(shown_in_window) == in_window
        if day == "2024-05-06":
            assert done["2024-05"] == 0  # the visit of 7 May is after the date
        check_page_matches(browser, body, "id")
    browser.click("#as-of-today")
    browser.wait_for("document.body.dataset.state === 'ready' && document.querySelector('#desludging-chart-notes li') !== null")
    today = api(reporting_url, MANAGER_KEY, browser.js("document.getElementById('as-of').value"))
    assert today["desludging"]["emptyings_in_window"] == 0 and today["desludging"]["last_emptied_on"] == "2024-08-12"
    assert browser.js("document.querySelector('#desludging-chart-notes li').textContent") == (
        "Tidak ada pengosongan dalam 12 bulan ini; pengosongan terakhir pada 12 Agustus 2024.")
    assert browser.script_errors() == []


def test_programme_officer_sees_the_cooperatives_side_by_side(browser: Chromium, reporting_url: str) -> None:
    open_dashboard(browser, reporting_url, PROGRAMME_KEY)
    as_of = browser.js("document.getElementById('as-of').value")
    body = api(reporting_url, PROGRAMME_KEY, as_of)
    assert body["scope"]["kind"] == "programme" and sorted(body["scope"]["cooperatives"]) == [BAIK, BMI]
    check_page_matches(browser, body, "id")
    assert browser.js("document.getElementById('scope-kind').textContent") == "Program"
    assert browser.js("document.getElementById('bycoop-panel').hidden") is False
    # one row per cooperative under the programme total; the header counts them instead of naming them
    assert browser.js("document.getElementById('scope-members').textContent") == "2 koperasi ikut"
    rows = browser.js("Array.from(document.querySelectorAll('table.bycoop tbody tr[data-cooperative]'))"
                      ".map(tr => [tr.dataset.cooperative, tr.querySelector('th').textContent])")
    assert rows[0][0] == "total"
    assert rows[1:] == [[c["scope"]["id"], c["scope"]["name"]] for c in body["by_cooperative"]]
    assert browser.js("document.getElementById('bycoop-range').textContent") == "1–2 dari 2"
    figures = {c["scope"]["id"]: c for c in body["by_cooperative"]} | {"total": body}
    kinds = {f"{section}.{k}": kind for section, table in (("headline", HEADLINE), ("financing", FINANCING),
                                                             ("desludging", DESLUDGING), ("construction", CONSTRUCTION))
             for k, kind in table.items()}
    seen = set()
    for group in BYCOOP_GROUPS:  # every indicator is a column of one of the groups
        browser.click(f"#bycoop-groups [data-group={group}]")
        cells = browser.js("Array.from(document.querySelectorAll('table.bycoop td[data-field]'))"
                           ".map(td => [td.dataset.cooperative, td.dataset.field, td.textContent])")
        assert cells, f"the per-cooperative table is empty ({group})"
        for coop, field, text in cells:
            section, key = field.split(".")
            assert text == bycoop_shown(kinds[field], figures[coop][section][key], "id"), (coop, field, text)
            seen.add(field)
    assert seen == set(kinds)
    browser.click("#bycoop-groups [data-group=summary]")
    browser.screenshot(ARTIFACTS / "dashboard-programme-id.png")
    # on a phone, in both languages: readable (no label overprints another, nothing scrolls sideways),
    # the figures as on the desktop; screenshots of each language at both widths
    for lang in ("id", "en"):
        if lang == "en":
            browser.click("[data-lang=en]")
            browser.wait_for("document.documentElement.lang === 'en'")
            check_readable_at(browser, WIDTH)
            check_page_matches(browser, body, "en")
            browser.screenshot(ARTIFACTS / "dashboard-programme-en.png")
        for width in (412, 360):
            check_readable_at(browser, width)
            check_page_matches(browser, body, lang)
        check_readable_at(browser, 412)
        browser.screenshot(ARTIFACTS / f"dashboard-programme-phone-{lang}.png", 412)
        check_readable_at(browser, WIDTH)
    assert browser.script_errors() == []


def test_export_buttons_download_with_the_key_in_a_header(browser: Chromium, reporting_url: str,
                                                          tmp_path: Path) -> None:
    browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}, browser=True)
    open_dashboard(browser, reporting_url, MANAGER_KEY)
    as_of = browser.js("document.getElementById('as-of').value")

    def downloaded(name: str) -> bytes:
        # Chromium may create the file empty when the download starts and write it after (a busy machine
        # shows it): done when the file is there, not empty, and no partial download is left
        deadline = time.monotonic() + 20
        while not ((tmp_path / name).exists() and (tmp_path / name).stat().st_size > 0
                   and not any(f.endswith(".crdownload") for f in os.listdir(tmp_path))):
            assert time.monotonic() < deadline, f"{name} was not downloaded; have {os.listdir(tmp_path)}"
            time.sleep(0.1)
        return (tmp_path / name).read_bytes()

    stem = f"washfin-cooperative-{BMI}-{as_of}"
    browser.click("[data-export='/reports/exports/report.xlsx']")
    xlsx = downloaded(f"{stem}.xlsx")
    assert xlsx[:2] == b"PK"  # an XLSX is a zip
    # in the page's language (Indonesian by default)
    assert openpyxl.load_workbook(io.BytesIO(xlsx)).sheetnames[0] == "Jangkauan"
    browser.click("[data-export='/reports/exports/indicators.csv']")
    assert b"indicator" in downloaded(f"{stem}-indicators.csv")
    browser.js("document.getElementById('export-table').value = 'sludge_flow'")
    browser.click("[data-export=table][data-format=csv]")
    assert b"contained" in downloaded(f"{stem}-sludge_flow.csv")
    # the page in English: the files come in English
    browser.click("[data-lang=en]")
    browser.wait_for("document.documentElement.lang === 'en'")
    browser.js("document.getElementById('export-table').value = 'funnel'")
    browser.click("[data-export=table][data-format=xlsx]")
    sheet = openpyxl.load_workbook(io.BytesIO(downloaded(f"{stem}-funnel.xlsx"))).active
    assert sheet.title == "Member funnel" and [c.value for c in sheet[1]] == ["Step", "Members"]
    browser.click("[data-export=client-csv]")
    figures = downloaded(f"washfin-{BMI}-{as_of}.csv").decode("utf-8-sig")
    members = api(reporting_url, MANAGER_KEY, as_of)["headline"]["members"]
    assert f"{BMI},headline,members,{as_of},{members}" in figures.splitlines()
    assert browser.script_errors() == []


def test_error_states(browser: Chromium, reporting_url: str) -> None:
    browser.open(f"{reporting_url}/dashboard")
    browser.wait_for("document.body.dataset.state === 'key'")
    browser.type_into("#api-key", "wf_notakey0000_butitlookslikeoneandisnotknown000")
    browser.wait_for("document.body.dataset.state === 'key-rejected'")
    assert "Kunci ditolak" in browser.js("document.getElementById('key-error').textContent")
    assert browser.js("sessionStorage.getItem('washfin.dashboard.apiKey')") is None

    # a key whose role may not read reports: said so, with a way to change the key
    browser.type_into("#api-key", key_for(BMI, Role.CONTRACTOR))
    browser.wait_for("document.body.dataset.state === 'error'")
    assert "tidak berhak" in browser.js("document.getElementById('alert-text').textContent")
    assert browser.js("document.getElementById('change-key').hidden") is False
    browser.click("#change-key")
    browser.wait_for("document.body.dataset.state === 'key'")

    # a failing service: the page says so and offers to try again, which then works
    browser.answer_dashboard(MANAGER_KEY, 503, b'{"error":"unavailable"}')
    browser.wait_for("document.body.dataset.state === 'error'")
    assert "HTTP 503" in browser.js("document.getElementById('alert-text').textContent")
    browser.send("Fetch.disable")
    browser.click("#retry")
    browser.wait_for("document.body.dataset.state === 'ready'")
    shown_as_of = browser.js("document.getElementById('as-of').value")

    # a date the API refuses (the future): its reason is shown, the figures and their date stay
    future = _days_ago(-30)
    browser.js(f"const i = document.getElementById('as-of'); i.value = '{future}';"
               " i.dispatchEvent(new Event('change'))")
    browser.wait_for("document.body.dataset.state === 'error'")
    assert "Permintaan ditolak" in browser.js("document.getElementById('alert-text').textContent")
    assert browser.js("document.getElementById('dashboard').hidden") is False
    assert browser.js("document.getElementById('as-of').value") == shown_as_of
