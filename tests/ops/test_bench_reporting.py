"""The reporting benches' baselines (``bench.reporting_reads``, ``bench.reporting_portfolio``) run end to
end at a tiny size through their real entries: each first asserts that the old queries (the test oracles,
swapped in for today's) and today's give the same answer, then times both. No figure is judged here; this
proves that the "old" side still runs when today's queries take arguments the references do not know
(it failed with a TypeError once the report's parts passed the withheld financings to every query).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.reporting_reads import OLD, as_today

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


def run(module: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)  # the bench starts its own server
    proc = subprocess.run([sys.executable, "-m", module, "--sizes", "12", "--distinct", "6", "--repeat", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout


def test_reporting_reads_times_old_and_new() -> None:
    out = run("bench.reporting_reads")
    for read in ("report", "dashboard", "xlsx", "programme"):
        row = re.search(rf"^{read}\s+12" + r"\s+([\d.]+)" * 6 + "$", out, re.M)
        assert row, out[-2000:]
        assert all(float(x) > 0 for x in row.groups()), row.group(0)


def test_reporting_portfolio_times_old_and_new() -> None:
    out = run("bench.reporting_portfolio")
    row = re.search(r"^\s+12\s+\d+" + r"\s+([\d.]+)" * 5 + r" / ([\d.]+)$", out, re.M)
    assert row, out[-2000:]
    assert all(float(x) > 0 for x in row.groups()), row.group(0)


def test_a_reference_refuses_withheld_financings() -> None:
    """The references predate consent: asked to withhold financings, the adapter says so instead of
    silently giving the figures with them."""
    seen: list[tuple[object, ...]] = []

    async def ref(conn: object, t: object, on: object) -> str:
        seen.append((conn, t, on))
        return "figures"

    fn = as_today(ref)
    assert asyncio.run(fn("c", "t", "d", None, keep_empty=True)) == "figures"
    assert asyncio.run(fn("c", "t", "d", minus=None)) == "figures"
    assert seen == [("c", "t", "d")] * 2
    for call in (lambda: fn("c", "t", "d", "withheld"), lambda: fn("c", "t", "d", minus="withheld")):
        with pytest.raises(ValueError, match="predates consent"):
            asyncio.run(call())
    with pytest.raises(TypeError, match="one \\(minus\\) at the most"):
        asyncio.run(fn("c", "t", "d", None, "more"))
    assert seen == [("c", "t", "d")] * 2
    assert set(OLD) == {"portfolio", "financing_by_product", "disbursed_by_fund", "repayment", "money_facts",
                        "write_offs", "monthly_money"}
