"""Who may do what on the brokers: one principal per service, and the ACLs that wall them in.

A service (principal ``User:<service>``) may

* write to (and create) its own topic ``washfin.<service>.v1`` and its dead-letter topics
  ``washfin.dlq.<service>.*`` (consumer names start with the service's name);
* read (and describe) only the topics it consumes (``CONSUMES``);
* use only its own consumer groups (``<service>.*``, the names of its projections).

Nothing else: the brokers run ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``, so an
unlisted operation is refused; the admin principal (a super user) only sets up and serves the CLI.
Every name is under the deployment's namespace (``shared.kafka.namespaced``), so ACLs are made per
namespace. aiokafka's admin client has no ACL calls: ``create_acls`` sends Kafka's CreateAcls request
(v1) over an admin connection itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.protocol.admin import CreateAclsRequest_v1
from aiokafka.protocol.api import Request

from shared.kafka import SERVICES, KafkaTarget, make_admin, namespaced, service_topic

#: the topics each service's consumers read (logical names); tests/kernel/test_kafka_acl.py checks it
#: against the services' projections
CONSUMES: dict[str, tuple[str, ...]] = {
    "members": (service_topic("loans"), service_topic("sanitation")),
    "loans": (service_topic("members"), service_topic("sanitation")),
    "sanitation": (service_topic("loans"), service_topic("members")),
    "reporting": (service_topic("members"), service_topic("loans"), service_topic("sanitation")),
}

# Kafka's wire codes (org.apache.kafka.common.resource / acl)
TOPIC, GROUP = 2, 3
LITERAL, PREFIXED = 3, 4
READ, WRITE, CREATE, DESCRIBE = 3, 4, 5, 8
ALLOW = 3
_OPERATIONS = {READ: "Read", WRITE: "Write", CREATE: "Create", DESCRIBE: "Describe"}
_RESOURCES = {TOPIC: "Topic", GROUP: "Group"}
_PATTERNS = {LITERAL: "literal", PREFIXED: "prefixed"}


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule: ``principal`` may ``operation`` on the resource(s) named (or prefixed) ``name``."""

    principal: str
    resource_type: int
    name: str
    pattern: int
    operation: int

    def __str__(self) -> str:
        return (f"{self.principal} {_OPERATIONS[self.operation]} {_RESOURCES[self.resource_type]} "
                f"{_PATTERNS[self.pattern]} {self.name!r}")


def service_acls(service: str, namespace: str = "") -> list[Acl]:
    """The ACLs of one service's principal in one namespace."""
    if service not in CONSUMES:
        raise ValueError(f"unknown service {service!r}")
    user = f"User:{service}"
    own = namespaced(service_topic(service), namespace)
    dlq = namespaced(f"washfin.dlq.{service}.", namespace)
    groups = namespaced(f"{service}.", namespace)
    acls = [Acl(user, TOPIC, own, LITERAL, op) for op in (WRITE, CREATE, DESCRIBE)]
    acls += [Acl(user, TOPIC, dlq, PREFIXED, op) for op in (WRITE, CREATE, DESCRIBE)]
    for topic in CONSUMES[service]:
        acls += [Acl(user, TOPIC, namespaced(topic, namespace), LITERAL, op) for op in (READ, DESCRIBE)]
    acls += [Acl(user, GROUP, groups, PREFIXED, op) for op in (READ, DESCRIBE)]
    return acls


def all_service_acls(namespace: str = "") -> list[Acl]:
    return [a for s in SERVICES for a in service_acls(s, namespace)]


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, acls: Iterable[Acl]) -> None:
        self.acls = list(acls)

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(
            [(a.resource_type, a.name, a.pattern, a.principal, "*", a.operation, ALLOW) for a in self.acls]
        )


class AclError(RuntimeError):
    pass


async def create_acls(admin_kafka: KafkaTarget, acls: Iterable[Acl], timeout: float = 60.0) -> None:
    """Create the ACLs (idempotent: an existing one is kept) with the admin principal.

    Retried while the broker's authorizer is still loading its metadata after a start."""
    acls = list(acls)
    admin = make_admin(admin_kafka, client_id="washfin-acl-setup")
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            resp = await admin._send_request(_CreateAcls(acls))  # noqa: SLF001 - no public ACL call
            errors = [(str(a), code, msg) for a, (code, msg) in zip(acls, resp.creation_responses) if code]
            if not errors:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AclError(f"the broker refused {len(errors)} ACLs, e.g. {errors[:3]}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
