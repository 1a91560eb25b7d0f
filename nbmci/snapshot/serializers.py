"""Model serializers: a lazy registry of plug-ins, safest first, pickle last.

The built-ins are a static table of dotted paths; third parties add
``[project.entry-points."nbmci.serializers"]``, read on first lookup (never at import time).
Every model load goes through ``load_model``, the one choke point for the trust rule: an
untrusted format (pickle/joblib) loads only with ``trust=True``.
"""

from __future__ import annotations

import importlib
import io
import logging
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from nbmci.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    PickleFallbackWarning,
    UnsupportedDataError,
    UntrustedModelError,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dumped:
    data: bytes
    trusted_types: list[str]  # exactly the list passed back at load


class Serializer(Protocol):
    name: str
    trusted: bool  # loads without running code from the artifact
    priority: int  # lower is tried first

    def can_handle(self, obj: Any) -> bool: ...
    def dump(self, obj: Any) -> Dumped: ...
    def load(self, data: bytes, trusted_types: list[str]) -> Any: ...


class SkopsSerializer:
    """scikit-learn estimators and pipelines with skops: no pickle, audited types."""

    name = "skops"
    trusted = True
    priority = 10

    def can_handle(self, obj: Any) -> bool:
        if "sklearn" not in sys.modules:  # nothing from sklearn can exist without it
            return False
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator)

    def dump(self, obj: Any) -> Dumped:
        import skops.io as sio

        data = canonical_skops(sio.dumps(obj))
        # The committer's own object: its types are approved now, and only these at load.
        return Dumped(data, sorted(sio.get_untrusted_types(data=data)))

    def load(self, data: bytes, trusted_types: list[str]) -> Any:
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        if not data.startswith(b"PK"):
            raise IntegrityError("The stored model is not a skops file (no zip header).",
                                 hint="Run `nbmci fsck`.")
        try:
            return sio.loads(data, trusted=list(trusted_types))
        except UntrustedTypesFoundException as exc:
            types = sorted(getattr(exc, "unsafe", None) or _types_from(str(exc)))
            raise UntrustedModelError(
                f"The stored model names types that were not approved at commit: "
                f"{', '.join(types) or exc}.",
                hint="Nothing was loaded. Re-commit the model from a trusted session.",
                types=types,
            ) from exc
        except Exception as exc:  # skops refuses malformed or malicious trees with plain errors
            raise UntrustedModelError(
                f"The stored model was refused by the skops loader: {exc}",
                hint="Nothing was loaded. Run `nbmci fsck`; re-commit it from a trusted session.",
            ) from exc


_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical_skops(data: bytes) -> bytes:
    """The same skops file with reproducible bytes, so an unchanged model deduplicates.

    skops names members and memo entries by ``id()`` and stamps the time into the zip; here
    ids are renumbered in order of first appearance and every timestamp is fixed. The tree
    itself is untouched.
    """
    import json
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    numbers: dict[int, int] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    value = numbers.setdefault(value, len(numbers))
                elif key == "file" and isinstance(value, str) and value.endswith(".npy") \
                        and value[:-4].isdigit():
                    value = f"{numbers.setdefault(int(value[:-4]), len(numbers))}.npy"
                else:
                    value = renumber(value)
                out[key] = value
            return out
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    renamed = renumber(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            name = info.filename
            if name == "schema.json":
                payload = json.dumps(renamed, separators=(",", ":")).encode()
            else:
                payload = source.read(info)
                stem = name[:-4]
                if name.endswith(".npy") and stem.isdigit() and int(stem) in numbers:
                    name = f"{numbers[int(stem)]}.npy"
            member = zipfile.ZipInfo(name, date_time=_EPOCH)
            member.compress_type = info.compress_type
            member.external_attr = 0o644 << 16
            target.writestr(member, payload)
    return out.getvalue()


def _types_from(text: str) -> list[str]:
    import re

    return re.findall(r"'([\w.]+)'", text)


class JoblibSerializer:
    """Anything joblib can pickle. Untrusted: loading runs code from the artifact."""

    name = "joblib"
    trusted = False
    priority = 1000

    def can_handle(self, obj: Any) -> bool:
        return True

    def dump(self, obj: Any) -> Dumped:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        return Dumped(buffer.getvalue(), [])

    def load(self, data: bytes, trusted_types: list[str]) -> Any:
        import joblib

        return joblib.load(io.BytesIO(data))


BUILTIN: dict[str, tuple[str, str]] = {
    "skops": ("nbmci.snapshot.serializers:SkopsSerializer", "pip install skops scikit-learn"),
    "joblib": ("nbmci.snapshot.serializers:JoblibSerializer", "pip install joblib"),
}


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class SerializerRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, tuple[str, str]] = dict(BUILTIN)
        self._instances: dict[str, Serializer] = {}
        self._scanned = False

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for ep in entry_points(group="nbmci.serializers"):
            # built-ins win a clash: a plug-in must not replace the safe skops path
            self._specs.setdefault(ep.name, (ep.value, f"Reinstall the package providing "
                                                       f"'{ep.value}'."))

    def register(self, serializer: Serializer, *, replace: bool = False) -> None:
        self._scan()
        if serializer.name in self._specs and not replace:
            raise ConflictError(f"A serializer named '{serializer.name}' is already registered.",
                                hint="Pass replace=True to override it.")
        self._specs[serializer.name] = ("", "")
        self._instances[serializer.name] = serializer

    def names(self) -> list[str]:
        self._scan()
        return sorted(self._specs)

    def get(self, name: str) -> Serializer:
        self._scan()
        if name in self._instances:
            return self._instances[name]
        if name not in self._specs:
            raise InvalidInputError(f"Unknown model format '{name}'.",
                                    hint=f"Installed: {', '.join(self.names())}.")
        target, hint = self._specs[name]
        try:
            instance = _import(target)()
        except ImportError as exc:
            raise MissingDependencyError(f"Model format '{name}' is not installed.",
                                         hint=f"Run `{hint}`.") from exc
        self._instances[name] = instance
        return instance

    def ordered(self) -> list[Serializer]:
        found = []
        for name in self.names():
            try:
                found.append(self.get(name))
            except MissingDependencyError:
                continue
        return sorted(found, key=lambda s: (s.priority, s.name))


registry = SerializerRegistry()


@dataclass(frozen=True)
class ModelBlob:
    format: str
    trusted: bool
    trusted_types: list[str]
    data: bytes


def dump_model(obj: Any, format: str | None = None) -> ModelBlob:
    """Serialize with ``format`` or the first serializer that can; pickle warns."""
    if obj is None:
        raise InvalidInputError("There is no model to commit (got None).")
    candidates = [registry.get(format)] if format else registry.ordered()
    errors = []
    for serializer in candidates:
        if not serializer.can_handle(obj):
            continue
        try:
            dumped = serializer.dump(obj)
        except Exception as exc:  # a serializer that cannot take this object: try the next
            errors.append(f"{serializer.name}: {exc}")
            logger.debug("serializer %s failed", serializer.name, exc_info=True)
            continue
        if not serializer.trusted:
            warnings.warn(
                f"{type(obj).__module__}.{type(obj).__qualname__} is stored with "
                f"{serializer.name} (pickle): loading it later needs trust=True.",
                PickleFallbackWarning,
                stacklevel=3,
            )
        return ModelBlob(serializer.name, serializer.trusted, dumped.trusted_types, dumped.data)
    raise UnsupportedDataError(
        f"No serializer could store a {type(obj).__name__}: {'; '.join(errors) or 'none fits'}."
    )


def load_model(blob_format: str, data: bytes, trusted_types: list[str], *, trust: bool,
               ref: str) -> Any:
    """The one choke point for loading models: untrusted formats need ``trust=True``."""
    serializer = registry.get(blob_format)
    if not serializer.trusted and trust is not True:
        raise UntrustedModelError(
            f"Model '{ref}' is stored as a pickle ({blob_format}): loading it can run "
            "arbitrary code.",
            hint=f"Load it only if you trust its author: nbmci.load('{ref}', trust=True).",
        )
    return serializer.load(data, list(trusted_types))
