"""Centres and groups (majelis) of a cooperative: where members meet every week.

A centre (pusat / rembug pusat) gathers several groups and belongs to a branch; a group belongs to at most
one centre (some cooperatives have groups only). Both are identified by the cooperative's own code (e.g.
``majelis-07``): members refer to their group by that code. The events here are internal to the members
service (not published); the member's ``MemberGroupChanged`` carries the centre to other services.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from functools import reduce
from typing import Any

from services.members.domain.errors import MemberRuleViolation, StateConflict, not_future
from shared.envelope import Envelope, NewEvent

CENTRE_STREAM = "centre"
GROUP_STREAM = "group"
CENTRE_OPENED = "members.CentreOpened"
CENTRE_DETAILS_CHANGED = "members.CentreDetailsChanged"
GROUP_FORMED = "members.GroupFormed"
GROUP_DETAILS_CHANGED = "members.GroupDetailsChanged"
GROUP_CLOSED = "members.GroupClosed"

CENTRE_FIELDS = ("name", "branch", "village", "district")
GROUP_FIELDS = ("name", "centre_id", "meeting_day")


def centre_stream_id(centre_id: str) -> str:
    """The centre's stream: derived from its code, so a second centre with the same code cannot exist."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"washfin:members:centre:{centre_id}"))


def group_stream_id(group_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"washfin:members:group:{group_id}"))


@dataclass(frozen=True)
class Centre:
    centre_id: str | None = None
    name: str | None = None
    branch: str | None = None
    village: str | None = None
    district: str | None = None
    opened_on: date | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.centre_id is not None


@dataclass(frozen=True)
class Group:
    group_id: str | None = None
    name: str | None = None
    centre_id: str | None = None
    meeting_day: str | None = None
    formed_on: date | None = None
    closed_on: date | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.group_id is not None

    @property
    def closed(self) -> bool:
        return self.closed_on is not None


def evolve_centre(state: Centre, event: Envelope) -> Centre:
    p = event.payload
    if event.type == CENTRE_OPENED:
        return Centre(centre_id=p["centre_id"], name=p["name"], branch=p.get("branch"), village=p.get("village"),
                      district=p.get("district"), opened_on=date.fromisoformat(p["opened_on"]),
                      version=event.version)
    if event.type == CENTRE_DETAILS_CHANGED:
        return replace(state, **{f: p[f] for f in p["changed_fields"]}, version=event.version)
    return replace(state, version=event.version)


def evolve_group(state: Group, event: Envelope) -> Group:
    p = event.payload
    if event.type == GROUP_FORMED:
        return Group(group_id=p["group_id"], name=p["name"], centre_id=p.get("centre_id"),
                     meeting_day=p.get("meeting_day"), formed_on=date.fromisoformat(p["formed_on"]),
                     version=event.version)
    if event.type == GROUP_DETAILS_CHANGED:
        return replace(state, **{f: p[f] for f in p["changed_fields"]}, version=event.version)
    if event.type == GROUP_CLOSED:
        return replace(state, closed_on=date.fromisoformat(p["closed_on"]), version=event.version)
    return replace(state, version=event.version)


def fold_centre(events: list[Envelope]) -> Centre:
    return reduce(evolve_centre, events, Centre())


def fold_group(events: list[Envelope]) -> Group:
    return reduce(evolve_group, events, Group())


def open_centre(state: Centre, centre_id: str, details: dict[str, Any], opened_on: date, today: date) -> list[NewEvent]:
    if state.exists:
        raise StateConflict(f"centre {centre_id} already exists in this cooperative", field="centre_id")
    not_future(opened_on, today, "opened_on")
    return [NewEvent(CENTRE_OPENED, {"centre_id": centre_id, **{f: details.get(f) for f in CENTRE_FIELDS},
                                     "opened_on": opened_on.isoformat()})]


def change_centre(state: Centre, changes: dict[str, Any]) -> list[NewEvent]:
    if not state.exists:
        raise MemberRuleViolation("no such centre")
    if "name" in changes and not changes["name"]:
        raise MemberRuleViolation("cannot be cleared", field="name")
    changed = [f for f in CENTRE_FIELDS if f in changes and changes[f] != getattr(state, f)]
    if not changed:
        return []
    return [NewEvent(CENTRE_DETAILS_CHANGED, {"centre_id": state.centre_id, "changed_fields": changed,
                                              **{f: changes[f] for f in changed}})]


def _check_centre(centre_id: str | None, centre: Centre | None) -> None:
    if centre_id is not None and (centre is None or not centre.exists):
        raise MemberRuleViolation(f"no centre {centre_id} in this cooperative: open it first", field="centre_id")


def form_group(state: Group, group_id: str, details: dict[str, Any], formed_on: date, today: date, *,
               centre: Centre | None) -> list[NewEvent]:
    if state.exists:
        raise StateConflict(f"group {group_id} already exists in this cooperative", field="group_id")
    _check_centre(details.get("centre_id"), centre)
    not_future(formed_on, today, "formed_on")
    return [NewEvent(GROUP_FORMED, {"group_id": group_id, **{f: details.get(f) for f in GROUP_FIELDS},
                                    "formed_on": formed_on.isoformat()})]


def change_group(state: Group, changes: dict[str, Any], *, centre: Centre | None) -> list[NewEvent]:
    if not state.exists:
        raise MemberRuleViolation("no such group")
    if state.closed:
        raise StateConflict(f"group {state.group_id} was closed on {state.closed_on}")
    if "name" in changes and not changes["name"]:
        raise MemberRuleViolation("cannot be cleared", field="name")
    if "centre_id" in changes:
        _check_centre(changes["centre_id"], centre)
    changed = [f for f in GROUP_FIELDS if f in changes and changes[f] != getattr(state, f)]
    if not changed:
        return []
    return [NewEvent(GROUP_DETAILS_CHANGED, {"group_id": state.group_id, "changed_fields": changed,
                                             **{f: changes[f] for f in changed}})]


def close_group(state: Group, closed_on: date, today: date, *, active_members: int) -> list[NewEvent]:
    """Close a group that no active member belongs to any more."""
    if not state.exists:
        raise MemberRuleViolation("no such group")
    if state.closed:
        raise StateConflict(f"group {state.group_id} was already closed on {state.closed_on}")
    if active_members:
        raise StateConflict(f"group {state.group_id} still has {active_members} active member(s): move them first")
    not_future(closed_on, today, "closed_on")
    assert state.formed_on is not None
    if closed_on < state.formed_on:
        raise MemberRuleViolation(f"before the group was formed ({state.formed_on})", field="closed_on")
    return [NewEvent(GROUP_CLOSED, {"group_id": state.group_id, "closed_on": closed_on.isoformat()})]
