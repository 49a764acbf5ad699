"""The chaos checker's passed-by types are the reporting builds' own ``event_types`` (one definition)."""

from __future__ import annotations

from bench.chaos.checker import _taken_types
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.contracts.loans import ProductPublished


def test_a_reporting_consumer_takes_what_its_build_declares() -> None:
    for fam in FAMILIES.values():
        consumer = fam.default_build()
        assert _taken_types(consumer) == Build(fam, consumer, fam.default_suffix()).event_types


def test_the_catalogue_takes_only_its_products() -> None:
    catalogue = [f for f in FAMILIES.values() if f.projects is not None]
    assert catalogue, "a family reads a topic for only some of its events"
    assert _taken_types(catalogue[0].default_build()) == frozenset({ProductPublished.event_type})


def test_other_consumers_take_every_type() -> None:
    assert _taken_types("loans.tranche-release") is None
    assert _taken_types("reporting.no-such-family.v1") is None
    assert _taken_types("reporting") is None
