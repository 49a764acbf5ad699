"""python -m bench [--quick] [--only S1,S2,S3,S4,S5,S6,S5N] [--json PATH]

Starts its own PostgreSQL and Kafka (``deploy.local.infra``: ``DATABASE_URL`` /
``KAFKA_BOOTSTRAP_SERVERS`` win when set), runs the scenarios, stops everything and prints one table in
which every figure stands beside a baseline measured in the same run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import Bench, Infra, Row, fdatasync_rate, fmt, quiet_logs, say, sizes

SCENARIOS: dict[str, str] = {
    "S1": "bench.s1_appends",
    "S2": "bench.s2_relay",
    "S3": "bench.s3_end_to_end",
    "S4": "bench.s4_api",
    "S5": "bench.s5_scale",
    "S6": "bench.s6_load",
    "S5N": "bench.s5_neighbour",
}
NEEDS_KAFKA = {"S2", "S3"}
#: run only when named in --only: S5 builds books of tens of thousands of financings (tens of minutes)
OPT_IN = {"S5", "S5N"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="washfin benchmarks (bench/README.md)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    p.add_argument("--only", default="", help="comma-separated scenarios to run, e.g. S1,S3")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    chosen = [s.strip().upper() for s in args.only.split(",") if s.strip()] or [s for s in SCENARIOS if s not in OPT_IN]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = chosen
    return args


def table(rows: list[Row]) -> str:
    head = ["#", "measure", "washfin", "unit", "baseline (same run)", "baseline", "ratio", "target", "met"]
    body = []
    for r in rows:
        met = {True: "met", False: "MISSED", None: ""}[r.met]
        body.append([
            r.scenario, r.measure, fmt(r.value, r.unit), r.unit, r.baseline or "(absolute target)",
            fmt(r.baseline_value, r.unit), f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            r.target.describe(r.unit) if r.target else "-", met,
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    right = {2, 5, 6}

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    out = [line(head), "  ".join("-" * w for w in widths)]
    prev = None
    for r, cells in zip(rows, body):
        if prev is not None and r.scenario[:2] != prev:
            out.append("")
        prev = r.scenario[:2]
        out.append(line(cells))
    return "\n".join(out)


async def run_all(args: argparse.Namespace, infra: Infra, bench: Bench,
                  extra: dict[str, tuple[str, object]]) -> tuple[list[Row], list[str]]:
    """Runs the chosen scenarios; a scenario module with a ``tables()`` function (S6) adds its own table,
    printed under the main one (and written to the JSON), to ``extra``."""
    import importlib

    rows: list[Row] = []
    errors: list[str] = []
    for name in args.scenarios:
        say(f"{name}: starting")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(SCENARIOS[name])
            run: Callable[[Bench], Awaitable[list[Row]]] = module.run
            rows += await run(bench)
            more = getattr(module, "tables", None)
            if more is not None and (got := more()) is not None:
                extra[name] = got
        except Exception as e:  # noqa: BLE001 - one failed scenario must not hide the others' figures
            traceback.print_exc()
            errors.append(f"{name} failed: {e!r}")
        say(f"{name}: done in {time.perf_counter() - t0:.0f} s")
    return rows, errors


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quiet_logs()
    sz = sizes(args.quick)
    started = time.perf_counter()

    # first, on an idle disk: the physical ceiling of durable commits
    say("measuring the disk's fdatasync rate with pg_test_fsync")
    fsync, fsync_how = fdatasync_rate(2)

    say("starting PostgreSQL" + (" and Kafka" if NEEDS_KAFKA & set(args.scenarios) else ""))
    infra = Infra(need_kafka=bool(NEEDS_KAFKA & set(args.scenarios)))
    bench = Bench(infra, sz)
    extra: dict[str, tuple[str, object]] = {}
    try:
        for line in infra.describe():
            say(line)
        rows, errors = asyncio.run(run_all(args, infra, bench, extra))
        described = infra.describe()
    finally:
        say("stopping the infrastructure")
        infra.stop()
    elapsed = time.perf_counter() - started

    header = [
        f"washfin benchmarks ({'--quick' if args.quick else 'full'}; {', '.join(args.scenarios)}) "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {elapsed:.0f} s",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
        *described,
        (f"disk: fdatasync {fsync:,.0f} ops/s = the ceiling for one-at-a-time durable commits "
         f"({fsync_how})" if fsync else f"disk: fdatasync rate unknown ({fsync_how})"),
    ]
    print("\n".join(header))
    print()
    print(table(rows) if rows else "(no results)")
    for text, _ in extra.values():
        print()
        print(text)
    if bench.notes:
        print("\ndetails (where the time goes):")
        for n in bench.notes:
            print(f"  {n}")
    for e in errors:
        print(f"ERROR: {e}")
    print("\nTargets are goals, not assertions. Figures from one run on a shared machine are noisy.")

    if args.json:
        args.json.write_text(json.dumps({
            "header": header,
            "fdatasync_ops_per_s": fsync,
            "quick": args.quick,
            "scenarios": args.scenarios,
            "rows": [r.as_dict() for r in rows],
            "notes": bench.notes,
            "tables": {name: data for name, (_, data) in extra.items()},
            "errors": errors,
        }, indent=2, default=str))
        say(f"results written to {args.json}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
