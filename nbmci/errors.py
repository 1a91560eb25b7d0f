"""The one exception hierarchy of nbmci.

Faces (CLI, magics, servers) map the *category* classes below to exit codes or HTTP statuses by
walking ``type(exc).__mro__``, so a new leaf needs no face change::

    NbmciError                          .message, .hint; str() is one line
    ├── InvalidInputError (ValueError)      bad name, ref, argument, config or file
    │     InvalidNameError, InvalidRefError, ConfigError, UnsupportedDataError,
    │     InputMismatchError (HTTP 422: well-formed, but not what the model takes)
    ├── NotFoundError (LookupError)         model, version, alias or object absent
    │     ModelNotFoundError, VersionNotFoundError, ObjectNotFoundError
    ├── ConflictError                       lost a race, already exists, object collision
    │     ObjectCollisionError
    ├── NotAllowedError                     untrusted artifact, refused by policy
    │     UntrustedModelError
    ├── IntegrityError                      stored bytes or metadata are damaged
    │     CorruptObjectError
    ├── UnavailableError                    store or database unreachable, disk full, I/O error
    │     MissingDependencyError, StorageError
    └── FailedError                         an operation ran and failed
          CancelledError
    NbmciWarning (UserWarning)
    └── PickleFallbackWarning
"""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def listed(items: Any, limit: int = 20) -> str:
    """``a, b, c and 7 more``: names for a message, all of them or a count of the rest."""
    names = [str(i) for i in items]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def redact_url(url: str) -> str:
    """Hide credentials in a URL before it goes into a message or a log line."""
    return _USERINFO.sub(r"\g<scheme>***@", url)


class NbmciError(Exception):
    """Root of every error nbmci raises on purpose.

    ``message`` says what happened and to what; ``hint`` says what to do about it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # also beats KeyError's repr-quoting
        return f"{self.message} {self.hint}" if self.hint else self.message


# -- categories ------------------------------------------------------------------------------


class InvalidInputError(NbmciError, ValueError):
    """The caller passed something nbmci cannot accept."""


class NotFoundError(NbmciError, LookupError):
    """A model, version, alias or stored object does not exist."""


class ConflictError(NbmciError):
    """The request conflicts with the current state."""


class NotAllowedError(NbmciError):
    """The request is refused by a safety policy."""


class IntegrityError(NbmciError):
    """Stored bytes or metadata are damaged."""


class UnavailableError(NbmciError):
    """A resource nbmci needs cannot be used right now."""


class FailedError(NbmciError):
    """An operation ran and failed."""


# -- leaves ----------------------------------------------------------------------------------


class InvalidNameError(InvalidInputError):
    def __init__(self, name: object, what: str = "model") -> None:
        shown = repr(name) if not isinstance(name, str) else repr(name[:80])
        super().__init__(
            f"{shown} is not a valid {what} name.",
            hint="Names are 1-64 characters of lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit.",
        )
        self.name = name


class InvalidRefError(InvalidInputError):
    def __init__(self, ref: object, reason: str) -> None:
        shown = repr(ref) if not isinstance(ref, str) else repr(ref[:80])
        super().__init__(
            f"{shown} is not a valid reference: {reason}.",
            hint="Use NAME@N, NAME@latest or NAME@ALIAS, e.g. clf@3.",
        )
        self.ref = ref


class ConfigError(InvalidInputError):
    pass


class UnsupportedDataError(InvalidInputError):
    pass


class InputMismatchError(InvalidInputError):
    """Input that is well-formed but not what the model takes: a wrong type, a missing or
    unknown column, a value outside the training categories. The fields say where."""

    def __init__(self, message: str, *, field: str | None = None, column: str | None = None,
                 row: int | None = None, value: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "See the model's inputs at GET /v2/models/NAME.")
        self.field = field
        self.column = column
        self.row = row
        self.value = value


class ModelNotFoundError(NotFoundError):
    def __init__(self, name: str, known: list[str] | None = None) -> None:
        known_models = f" Known models: {listed(known)}." if known else ""
        super().__init__(
            f"Model '{name}' not found.{known_models}", hint="List models with `nbmci models`."
        )
        self.name = name


class VersionNotFoundError(NotFoundError):
    def __init__(self, ref: str, name: str, latest: int | None) -> None:
        tail = f"the latest is {name}@{latest}" if latest else f"'{name}' has no versions"
        super().__init__(
            f"Version '{ref}' not found: {tail}.", hint=f"List versions with `nbmci log {name}`."
        )
        self.ref = ref
        self.latest = latest


class ObjectNotFoundError(NotFoundError):
    def __init__(self, digest: str, location: str) -> None:
        super().__init__(
            f"Object {digest} is missing from the store at {location}.",
            hint="Run `nbmci fsck` to list every damaged version.",
        )
        self.digest = digest
        self.location = location


class ObjectCollisionError(ConflictError):
    def __init__(self, digest: str, path: str) -> None:
        super().__init__(
            f"Object {digest} already exists at {path} with different bytes; "
            "the existing object was left untouched.",
            hint="Run `nbmci fsck`: one of the two copies is corrupt.",
        )
        self.digest = digest
        self.path = path


class UntrustedModelError(NotAllowedError):
    def __init__(self, message: str, *, hint: str | None = None, types: list[str] | None = None):
        super().__init__(message, hint=hint)
        self.types = types or []


class CorruptObjectError(IntegrityError):
    def __init__(self, digest: str, path: str, reason: str = "hash mismatch") -> None:
        super().__init__(
            f"Object {digest} is corrupt ({reason}) at {path}.",
            hint="Run `nbmci fsck` to find all damaged objects.",
        )
        self.digest = digest
        self.path = path


class MissingDependencyError(UnavailableError):
    pass


class StorageError(UnavailableError):
    """Writing or reading the store failed in the operating system (disk full, I/O error)."""

    def __init__(self, message: str, *, hint: str | None = None, errno: int | None = None):
        super().__init__(message, hint=hint)
        self.errno = errno


class NotServableError(FailedError):
    """A version cannot be served: it does not load from the store alone, in a fresh process,
    or does not reproduce the outputs recorded on its example rows."""

    def __init__(self, ref: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{ref} is not servable: {reason}", hint=hint)
        self.ref = ref
        self.reason = reason


class CancelledError(FailedError):
    """A long operation was stopped on request before it finished; nothing was recorded."""


# -- warnings --------------------------------------------------------------------------------


class NbmciWarning(UserWarning):
    pass


class PickleFallbackWarning(NbmciWarning):
    pass


class NotServableWarning(NbmciWarning):
    """A commit stored a version no server can load; the message names why and the fix."""


# The HTTP status of each category, for the faces that speak HTTP (the serving app and the
# Jupyter server extension); a face adds statuses for its own leaves.
HTTP_STATUS: dict[type, int] = {
    InvalidInputError: 400, InputMismatchError: 422, NotFoundError: 404, ConflictError: 409,
    NotAllowedError: 403, FailedError: 422, UnavailableError: 503, IntegrityError: 500,
}


def category(exc: BaseException, table: dict[type, Any], default: Any) -> Any:
    """Look up ``exc``'s category in a face's table by walking its MRO (starlette's way)."""
    return next((table[c] for c in type(exc).__mro__ if c in table), default)
