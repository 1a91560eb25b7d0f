"""Result objects of the Python API: small frozen dataclasses that faces render."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from nbmci.digest import short_digest


@dataclass(frozen=True)
class ModelArtifact:
    class_name: str
    format: str
    digest: str
    size: int
    trusted: bool  # the format loads without running code from the artifact
    trusted_types: list[str]
    vouched_by: str | None = None  # who committed it with trust=True (serving loads it then)

    @property
    def vouched(self) -> bool:
        return self.vouched_by is not None

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.class_name, "format": self.format, "digest": self.digest,
                "size": self.size, "trusted": self.trusted, "trusted_types": self.trusted_types,
                "vouched": self.vouched, "vouched_by": self.vouched_by}


@dataclass(frozen=True)
class DataInfo:
    key: str
    digest: str
    kind: str  # dataframe | series | ndarray
    rows: int
    nbytes: int
    columns: list[dict[str, str]]  # name, dtype
    stats: dict[str, Any]

    def to_dict(self, stats: bool = False) -> dict[str, Any]:
        out = {"digest": self.digest, "kind": self.kind, "rows": self.rows,
               "columns": self.columns, "nbytes": self.nbytes}
        if stats:
            out["stats"] = self.stats
        return out


@dataclass(frozen=True)
class Stored:
    """What a commit wrote: new bytes versus bytes already in the store."""

    new_bytes: int = 0
    dedup_bytes: int = 0
    new_objects: int = 0
    dedup_objects: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class CIStatus:
    """The newest CI run of a version."""

    status: str  # passed | failed | error
    metrics: dict[str, Any]
    gates: list[dict[str, Any]]
    started_at: dt.datetime
    duration: float
    notebooks: list[dict[str, Any]]  # notebook, status, output_digest, error, cached

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "metrics": self.metrics, "gates": self.gates,
                "started_at": self.started_at.isoformat(), "duration": self.duration,
                "notebooks": self.notebooks}


@dataclass(frozen=True)
class Servability:
    """Whether a version can be served: it loads from the store alone, in a fresh process, and
    reproduces the outputs recorded on its example rows (see ``nbmci.snapshot.servable``).

    ``status``: ``servable``, ``not servable``, ``checking`` (the check started at commit is
    still running) or ``unknown`` (committed before checks existed, or never checked)."""

    status: str
    reason: str | None = None
    hint: str | None = None
    where: str | None = None  # commit | ci | publish | check
    checked_at: dt.datetime | None = None
    seconds: float | None = None

    @property
    def servable(self) -> bool:
        return self.status == "servable"

    @property
    def summary(self) -> str:
        """One line: ``servable``, or ``not servable: why``."""
        return f"{self.status}: {self.reason}" if self.reason else self.status

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "hint": self.hint,
                "where": self.where, "seconds": self.seconds,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None}


UNKNOWN = Servability("unknown")


@dataclass(frozen=True)
class Version:
    """One committed version of a model. ``ref`` is ``name@number``."""

    name: str
    version: int
    created_at: dt.datetime
    message: str
    author: str
    model: ModelArtifact
    data: dict[str, DataInfo]
    params: dict[str, Any]
    metrics: dict[str, Any]
    signature: dict[str, Any]
    lineage: dict[str, Any]
    aliases: list[str] = field(default_factory=list)
    stored: Stored = field(default_factory=Stored)
    duration: float | None = None  # seconds the commit took, for fresh commits
    ci: CIStatus | None = None  # the newest CI run, if CI has run
    servability: Servability = UNKNOWN

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def schema(self) -> Any:
        """The input schema recorded at commit (an ``InputSchema``), or None before schemas."""
        from nbmci.snapshot.schema import InputSchema

        recorded = self.signature.get("schema")
        return InputSchema.from_dict(recorded) if isinstance(recorded, dict) else None

    def __repr__(self) -> str:
        return f"<Version {self.ref} {self.model.class_name} {short_digest(self.model.digest)}>"

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "author": self.author,
            "aliases": list(self.aliases),
            "data": {k: d.to_dict(stats=full) for k, d in self.data.items()},
            "model": self.model.to_dict(),
            "params": self.params,
            "metrics": self.metrics,
            "stored": self.stored.to_dict(),
            "ci": self.ci.to_dict() if self.ci else None,
            "servability": self.servability.to_dict(),
        }
        if full:
            out["signature"] = self.signature
            out["lineage"] = self.lineage
        if self.duration is not None:
            out["duration"] = self.duration
        return out


@dataclass(frozen=True)
class ModelSummary:
    name: str
    versions: int
    latest: int | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "latest": self.latest,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat() if self.updated_at else None,
                "aliases": self.aliases}


@dataclass(frozen=True)
class Change:
    key: str
    status: str  # added | removed | changed | same
    a: Any = None
    b: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class DataDiff:
    key: str
    status: str  # added | removed | changed | same
    rows: tuple[int | None, int | None]
    columns: list[Change]  # dtype changes per column
    stats: dict[str, list[Change]]  # column -> statistic changes

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "rows": list(self.rows),
                "columns": [c.to_dict() for c in self.columns],
                "stats": {k: [c.to_dict() for c in v] for k, v in self.stats.items()}}


@dataclass(frozen=True)
class Diff:
    a: Version
    b: Version
    model: list[Change]
    params: list[Change]
    metrics: list[Change]
    signature: list[Change]
    data: list[DataDiff]

    @property
    def changed(self) -> bool:
        groups = (self.model, self.params, self.metrics, self.signature)
        return any(c.status != "same" for g in groups for c in g) or any(
            d.status != "same" for d in self.data)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.ref, "b": self.b.ref, "changed": self.changed,
                "model": [c.to_dict() for c in self.model],
                "params": [c.to_dict() for c in self.params],
                "metrics": [c.to_dict() for c in self.metrics],
                "signature": [c.to_dict() for c in self.signature],
                "data": [d.to_dict() for d in self.data]}


@dataclass(frozen=True)
class Problem:
    kind: str  # corrupt | missing | incomplete | registry | alias
    subject: str  # digest, ref or check name
    detail: str
    refs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FsckReport:
    objects: int
    referenced: int
    unreferenced: int
    temporary: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "objects": self.objects, "referenced": self.referenced,
                "unreferenced": self.unreferenced, "temporary": self.temporary,
                "problems": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class GcReport:
    deleted_objects: int
    deleted_bytes: int
    deleted_temporary: int
    kept_young: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkout:
    ref: str
    directory: str
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Publication:
    """An alias move: ``publish`` or ``rollback``."""

    name: str
    alias: str
    previous: int | None
    version: int
    forced: bool
    rolled_back: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ref": self.ref}
