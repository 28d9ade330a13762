"""Errors lib raises. Each carries a catalog key and parameters, so pages show it in the
user's language: ``t(err.key, lang, **err.params)``."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class ValidationFailed(DomainError):
    """Bad input: nothing was changed."""


class PermissionDenied(DomainError):
    """The acting user may not do this (role, tier or scope)."""


class NotFound(DomainError):
    pass


class StaleObject(DomainError):
    """Someone else changed the record first."""


class Throttled(DomainError):
    """Too many attempts; try again later."""
