"""The layers hold: the import-linter contracts of pyproject.toml (``[tool.importlinter]``) are kept.

Services meet only through published events and ``shared/``; the kernel imports no service; services
import no deployment code or benchmark; domain cores import no I/O library. ``lint-imports`` reads the
whole tree's imports (grimp) and names the import chain of any broken contract.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), f"{lint} is missing: import-linter is a dev dependency (pip install -e '.[dev]')"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # every contract of pyproject.toml ran (a contract dropped from the file would otherwise pass silently)
    assert "Contracts: 4 kept, 0 broken." in done.stdout, done.stdout[-2000:]
