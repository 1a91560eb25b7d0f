"""References to model versions: ``name@3``, ``name@latest``, ``name@production``.

Names are validated here and nowhere else; store paths are never built from names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbmci.errors import InvalidNameError, InvalidRefError

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
_NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
LATEST = "latest"
MAX_REF_LENGTH = 200


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def validate_name(name: object, what: str = "model") -> str:
    """Return ``name`` if it is a valid model (or alias, data key) name, else raise.

    Raises:
        InvalidNameError: ``name`` is not a string matching ``[a-z0-9][a-z0-9._-]{0,63}``.

    Example: ``validate_name("clf")``
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidNameError(name, what)
    return name


def name_for_variable(variable: str) -> str:
    """The model name a variable gives by default: itself, else lower-cased with '-' for '_'
    (``X_clf`` -> ``x-clf``).

    Raises:
        InvalidNameError: not even that is a valid name.

    Example: ``name_for_variable("best_model") == "best-model"``
    """
    if is_valid_name(variable):
        return variable
    return validate_name(variable.lower().replace("_", "-"))


def validate_alias(alias: object) -> str:
    """Aliases follow the name rule, and may be neither a number nor ``latest``."""
    validate_name(alias, "alias")
    assert isinstance(alias, str)
    if alias.isdigit() or alias == LATEST:
        raise InvalidNameError(alias, "alias")
    return alias


@dataclass(frozen=True)
class Ref:
    """A parsed reference. Exactly one of ``version`` and ``alias`` is set."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, ref: object) -> Ref:
        """Parse ``NAME``, ``NAME@N``, ``NAME@latest`` or ``NAME@ALIAS``.

        A bare ``NAME`` means ``NAME@latest``.

        Raises:
            InvalidRefError: ``ref`` is not a string of that form.

        Example: ``Ref.parse("clf@3").version == 3``
        """
        if isinstance(ref, Ref):
            return ref
        if not isinstance(ref, str):
            raise InvalidRefError(ref, f"expected a string, got {type(ref).__name__}")
        if len(ref) > MAX_REF_LENGTH:
            raise InvalidRefError(ref, "too long")
        name, sep, selector = ref.partition("@")
        if not _NAME_RE.fullmatch(name):
            raise InvalidRefError(ref, f"{name[:80]!r} is not a valid model name")
        if not sep:
            return cls(name, alias=LATEST)
        if selector.isascii() and selector.isdigit():
            number = int(selector)
            if number < 1 or len(selector) > 12:
                raise InvalidRefError(ref, "version numbers start at 1")
            return cls(name, version=number)
        if selector == LATEST:
            return cls(name, alias=LATEST)
        if not _NAME_RE.fullmatch(selector):
            raise InvalidRefError(ref, f"{selector[:80]!r} is neither a version nor an alias")
        return cls(name, alias=selector)

    @property
    def is_latest(self) -> bool:
        return self.alias == LATEST

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else self.alias}"


def format_ref(name: str, version: int) -> str:
    return f"{name}@{version}"
