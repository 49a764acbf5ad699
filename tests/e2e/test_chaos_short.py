"""The short chaos run (issue 16): the whole system (PostgreSQL, a three-node Kafka cluster with RF 3 and
min ISR 2, two replicas of each service, each its own OS process) under a workload through the four public
APIs for two minutes while the nemesis kills and stops brokers, service replicas and PostgreSQL and sends a
poison event; after it heals, the checker's verdict must be PASS (``bench/chaos``; the long run is
``python -m bench.chaos --minutes 20``). 75 s of workload: each nemesis lane finishes the round of fault
kinds it began (about a minute), so one round of every kind is certain however short the run; more rounds
(repeats of a kind) are the long run's. About three and a half minutes of wall time here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import run, summary
from bench.chaos.nemesis import INFRA_KINDS, PROCESS_KINDS

# start-up (~1 min), 75 s of workload, healing and the checks: 3-4 minutes on a loaded 2-core machine
pytestmark = pytest.mark.timeout(900)


def test_short_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # brokers stopped 10-15 s (not up to 30): a short run holds more faults
    result = run(1.25, workdir=tmp_path / "chaos", broker_pause_s=(10.0, 15.0), heal_timeout_s=240.0)
    print(summary(result))
    assert result.operations["acknowledged"] > 100, "the workload did real work"
    assert result.operations["cases completed"] > 0, "whole cases went through every service"
    injected = {k for k, n in result.faults.items() if n}
    # every kind of fault happened at least once (each lane finishes the round of kinds it began)
    assert injected >= set(INFRA_KINDS) | set(PROCESS_KINDS), f"faults injected: {result.faults}"
    assert result.verdict == "PASS", summary(result)
