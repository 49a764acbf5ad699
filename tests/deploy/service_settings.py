"""The services' settings classes as the deployments must feed them (compose, the Kubernetes manifests):
each service's own ``app.SETTINGS``, and the environment variables a class reads."""

from __future__ import annotations

import importlib

from pydantic import AliasChoices

from deploy.local.services import SERVICES
from shared.settings import ServiceSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    s: importlib.import_module(f"services.{s}.app").SETTINGS for s in SERVICES}


def env_names(cls: type[ServiceSettings]) -> set[str]:
    """Every variable ``cls`` reads: a field's aliases where it has them, else its prefixed name."""
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for name, f in cls.model_fields.items():
        if isinstance(f.validation_alias, AliasChoices):
            names |= {c for c in f.validation_alias.choices if isinstance(c, str)}
        elif isinstance(f.validation_alias, str):
            names.add(f.validation_alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names
