"""How long each test file takes (``tests/durations.json``), for the order ``make test`` hands files out in.

Under ``make test`` (``pytest -n 2 --dist loadgroup``) each file is one unit of work (the security suite's
files one unit together, ``tests/conftest.py``), and the units go out longest first: a two-minute file
picked up last would leave the other worker idle for its length (longest-processing-time-first, the
classic bound for scheduling on a few machines). The seconds are a hint measured on a 2-core machine; a
stale or missing entry only costs balance, never a test. Refresh them from a run's durations:

    .venv/bin/python -m pytest -n 2 --dist loadgroup --durations=0 -q | tee /tmp/durations.log
    .venv/bin/python -m tests.durations /tmp/durations.log
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

FILE = Path(__file__).with_name("durations.json")
_LINE = re.compile(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+(\S+?)::")


def per_file(log: str) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown added up) from pytest's ``--durations=0`` lines."""
    seconds: Counter[str] = Counter()
    for line in log.splitlines():
        m = _LINE.match(line)
        if m:
            seconds[m.group(2)] += float(m.group(1))
    return {f: round(s, 1) for f, s in sorted(seconds.items(), key=lambda fs: (-fs[1], fs[0]))}


def load() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(FILE.read_text()).items()}
    except FileNotFoundError:
        return {}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.durations LOG  (a pytest --durations=0 output)", file=sys.stderr)
        return 2
    measured = per_file(Path(argv[0]).read_text())
    if not measured:
        print(f"{argv[0]}: no --durations lines found", file=sys.stderr)
        return 1
    FILE.write_text(json.dumps(measured, indent=0) + "\n")
    print(f"{FILE}: {len(measured)} files, {sum(measured.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
