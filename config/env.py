"""Tiny strict readers for environment variables.

Every variable may also be given as ``NAME_FILE``: the path of a file holding the value
(Docker and Kubernetes secrets).
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def envraw(name: str) -> str | None:
    """The value of ``name`` (or the content of ``NAME_FILE``), or None when unset or empty."""
    value = os.environ.get(name)
    if not value and os.environ.get(f"{name}_FILE"):
        value = Path(os.environ[f"{name}_FILE"]).read_text().strip()
    return value or None


def is_set(name: str) -> bool:
    return envraw(name) is not None


def envstr(name: str, default: str = "") -> str:
    value = envraw(name)
    return default if value is None else value


def envbool(name: str, default: bool) -> bool:
    value = envraw(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = envraw(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def envfloat(name: str, default: float) -> float:
    value = envraw(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None


def envlist(name: str, default: list[str] | None = None) -> list[str]:
    value = envraw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]
