"""``tests/durations.py``: the seconds per file that ``make test`` hands the files out by, longest first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import durations

LOG = """\
============================= slowest durations ==============================
120.15s call     tests/e2e/test_chaos_short.py::test_short_chaos_run_loses_and_duplicates_nothing
10.50s setup    tests/services/reporting/test_dashboard.py::test_page_and_assets_ship_with_the_service
2.25s call     tests/services/reporting/test_dashboard.py::test_manager_sees[id-en]
0.30s teardown tests/services/reporting/test_dashboard.py::test_error_states@tests/services/reporting/test_dashboard.py
0.01s setup    tests/unit/test_maths.py::test_add_months[2024-01-31]

(4128 durations < 0.005s hidden.  Use -vv to show these durations.)
1866 passed in 593.22s (0:09:53)
"""


def test_seconds_are_added_up_per_file_longest_first() -> None:
    measured = durations.per_file(LOG)
    assert measured == {"tests/e2e/test_chaos_short.py": 120.2,
                        "tests/services/reporting/test_dashboard.py": 13.1,
                        "tests/unit/test_maths.py": 0.0}
    assert list(measured) == sorted(measured, key=lambda f: -measured[f])


def test_the_command_writes_the_file_and_refuses_a_log_without_durations(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "durations.json"
    monkeypatch.setattr(durations, "FILE", out)
    log = tmp_path / "run.log"
    log.write_text(LOG)
    assert durations.main([str(log)]) == 0
    assert durations.load() == durations.per_file(LOG)
    log.write_text("1866 passed in 593.22s\n")
    assert durations.main([str(log)]) == 1
    assert "no --durations lines found" in capsys.readouterr().err
    assert durations.load() == durations.per_file(LOG), "a log without durations leaves the file as it was"


def test_the_committed_hint_names_test_files() -> None:
    root = Path(durations.__file__).resolve().parent.parent
    measured = durations.load()
    assert len(measured) > 100 and all(s >= 0 for s in measured.values())
    assert all(f.startswith("tests/") and f.endswith(".py") for f in measured)
    present = [f for f in measured if (root / f).is_file()]
    assert len(present) >= 0.9 * len(measured), "most entries name files that exist (refresh tests/durations.json)"
