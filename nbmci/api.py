"""The one Python API every face (magics, CLI, servers) calls.

Example::

    import nbmci
    v = nbmci.commit(clf, data={"X_train": X_train, "y_train": y_train}, message="more trees")
    clf1 = nbmci.load("clf@1")
    frames = nbmci.load_data("clf@1")
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmci import _inputs, refs
from nbmci._rows import TRUST_KEY, version_from_row
from nbmci.config import Settings, load_settings
from nbmci.errors import (
    ConflictError,
    InvalidInputError,
    ModelNotFoundError,
    NbmciError,
    NotFoundError,
    NotServableError,
    NotServableWarning,
    VersionNotFoundError,
)
from nbmci.refs import Ref
from nbmci.registry import Registry
from nbmci.registry.queries import AliasMovedError, as_utc
from nbmci.results import (
    Checkout,
    Diff,
    FsckReport,
    GcReport,
    ModelSummary,
    Publication,
    Stored,
    Version,
)
from nbmci.store import ObjectStore, open_store

if TYPE_CHECKING:
    from nbmci.servability import Checks
    from nbmci.snapshot.memo import DatasetMemo

logger = logging.getLogger(__name__)

PRODUCTION = "production"

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class Project:
    """One project's registry and store. Most users call the module-level functions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"Project({str(self.settings.root)!r})"

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Project:
        """The project that holds ``path`` (default: the working directory)."""
        return cls(load_settings(path))

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings.store_url, durable=self.settings.durable)

    @cached_property
    def _datasets_seen(self) -> DatasetMemo:
        """Data this process committed, so unchanged data is not hashed again."""
        from nbmci.snapshot.memo import DatasetMemo

        return DatasetMemo()

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.registry_url)

    @cached_property
    def checks(self) -> Checks:
        """Servability checks of this project's versions (see ``nbmci.servability``)."""
        from nbmci.servability import Checks

        return Checks(self)

    def close(self) -> None:
        if "checks" in self.__dict__:
            self.checks.close()
        if "registry" in self.__dict__:
            self.registry.close()

    # -- commit ------------------------------------------------------------------------------

    def commit(
        self,
        model: Any,
        data: Any = None,
        name: str | None = None,
        message: str = "",
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        lineage: Mapping[str, Any] | None = None,
        format: str | None = None,
        trust: bool = False,
        example: Any = None,
    ) -> Version:
        """Snapshot ``model`` and its training ``data`` as the next version of ``name``.

        ``trust=True`` records that the committer vouches for a pickled model, so that
        ``nbmci serve`` loads it without ``--trust-pickle``. ``example``: a few input rows
        (DataFrame, Series, array or list), for a model committed without its training data
        or to choose the rows its servability is checked on."""
        from nbmci import snapshot
        from nbmci.snapshot import code

        started = time.perf_counter()
        name = _inputs.model_name(model, name)
        if not isinstance(message, str):
            raise InvalidInputError(f"message must be a string, not {type(message).__name__}.")
        if not isinstance(trust, bool):
            raise InvalidInputError(f"trust must be True or False, not {trust!r:.40}.")
        if lineage and TRUST_KEY in lineage:
            raise InvalidInputError(f"The lineage key '{TRUST_KEY}' is reserved.",
                                    hint="Vouch for a pickled model with commit(..., trust=True).")
        items = _inputs.data_items(data)
        _inputs.check_example(example)
        params_json = _inputs.mapping("params", params) if params is not None else None
        metrics_json = _inputs.metrics(metrics)
        blob = snapshot.dump_model(model, format)
        local = code.local_files(code.referenced_modules(model, blob.trusted_types))
        bundle = code.bundle(local)
        previous = self._previous_manifests(name, list(items))
        tally = snapshot.WriteTally()
        datasets = {}
        total = sum(snapshot.data_nbytes(v) for v in items.values()) + len(blob.data)
        done = [0]

        def advance(nbytes: int) -> None:
            done[0] += nbytes
            if progress is not None:
                progress(min(done[0], total), total)

        with self.store.writing():  # until the registry references what it wrote
            with self.store.writer() as writer:
                for key, value in items.items():
                    datasets[key] = snapshot.write_dataset(
                        value, writer, tally, chunk_bytes=self.settings.chunk_bytes,
                        previous=previous.get(key), progress=advance, memo=self._datasets_seen)
                stored = writer.put([blob.data])
                tally.add(stored.digest, stored.size, stored.written)
                signature, problem = snapshot.infer_signature(model, items, example)
                in_notebook = code.main_objects(model, blob.trusted_types)
                if in_notebook:
                    problem = code.notebook_problem(in_notebook)
                if bundle is not None:  # modules beside the notebook the model needs
                    kept = writer.put([bundle])
                    tally.add(kept.digest, kept.size, kept.written)
                    signature["code"] = {"digest": kept.digest, "modules": sorted(local)}
            if progress is not None:
                progress(total, total)  # sizes were estimated up front; end at 100%
            author = snapshot.lineage.actor()
            row = {
                "message": message,
                "author": author,
                "model_digest": stored.digest,
                "model_format": blob.format,
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}"[:256],
                "model_size": len(blob.data),
                "trusted": blob.trusted,
                "trusted_types": blob.trusted_types,
                "params": params_json if params_json is not None else snapshot.model_params(model),
                "metrics": metrics_json,
                "signature": signature,
                "lineage": snapshot.lineage.capture(self.settings.root, model, message,
                                                    dict(lineage or {})),
                "stored": tally.to_dict(),
            }
            if trust:  # with the lineage: who vouched for running this artifact's code, and when
                row["lineage"][TRUST_KEY] = {"by": author, "at": row["lineage"].get("time")}
            dataset_rows = [
                {"key": key, "digest": s.digest, "kind": s.kind, "rows": s.rows,
                 "nbytes": s.nbytes, "schema": s.schema, "stats": s.stats}
                for key, s in datasets.items()
            ]
            number = self.registry.add_version(name, row, dataset_rows, tally.digests,
                                               actor=row["author"])
        version = self._version(name, number)
        if problem is not None:
            servability = self.checks.refuse(version, *problem)
            warnings.warn(f"{version.ref} is not servable: {problem[0]}. {problem[1]}",
                          NotServableWarning, stacklevel=3)
            version = _with(version, servability=servability)
        elif "schema" in signature:
            self.checks.start(version, trust=True)  # the committer's own model
            version = self.checks.current(version)
        duration = time.perf_counter() - started
        logger.info("committed %s in %.3fs", version.ref, duration)
        return _with(version, stored=Stored(**tally.to_dict()), duration=duration)

    def _previous_manifests(self, name: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The latest version's dataset manifests, so unchanged chunks reuse their stats."""
        from nbmci.snapshot.tables import read_manifest

        latest = self.registry.latest_number(name) if keys else None
        if latest is None:
            return {}
        rows = self.registry.versions(name, [latest])
        found = {}
        for d in rows[0]["datasets"] if rows else []:
            if d["key"] in keys:
                try:
                    found[d["key"]] = read_manifest(self.store, d["digest"])
                except NbmciError:
                    continue  # damaged history must not block a new commit
        return found

    # -- reads -------------------------------------------------------------------------------

    def resolve(self, ref: str | Ref) -> tuple[str, int]:
        """``(name, number)`` for a reference, or a clear NotFound error."""
        parsed = Ref.parse(ref)
        if parsed.alias is not None and not parsed.is_latest:
            refs.validate_alias(parsed.alias)
        if self.registry.model(parsed.name) is None:
            raise ModelNotFoundError(parsed.name, self.registry.model_names())
        latest = self.registry.latest_number(parsed.name)
        if parsed.version is not None:
            number: int | None = parsed.version
            if latest is None or parsed.version > latest or not self.registry.versions(
                    parsed.name, [parsed.version]):
                number = None
        elif parsed.is_latest:
            number = latest
        else:
            number = self.registry.alias_target(parsed.name, parsed.alias or "")
        if number is None:
            raise VersionNotFoundError(str(ref), parsed.name, latest)
        return parsed.name, number

    def show(self, ref: str | Ref) -> Version:
        """The version ``ref`` points at, with its data, lineage and aliases."""
        return self._version(*self.resolve(ref))

    def _version(self, name: str, number: int) -> Version:
        rows = self.registry.versions(name, [number])
        if not rows:
            raise VersionNotFoundError(f"{name}@{number}", name, None)
        version = version_from_row(rows[0])
        return self.checks.current(version) if "checks" in self.__dict__ else version

    def check(self, ref: str | Ref) -> Version:
        """Check now, in a fresh process, that ``ref`` loads from the store alone and
        reproduces the outputs recorded at commit; the verdict is recorded and returned in
        ``Version.servability``."""
        version = self.show(ref)
        servability = self.checks.run(version, where="check", again=True)
        return _with(version, servability=servability)

    def versions(self, name: str) -> list[Version]:
        """Every version of ``name``, newest first."""
        refs.validate_name(name)
        if self.registry.model(name) is None:
            raise ModelNotFoundError(name, self.registry.model_names())
        return [version_from_row(r) for r in self.registry.versions(name)]

    def models(self) -> list[ModelSummary]:
        """Every model in the registry with its latest version and aliases."""
        return [
            ModelSummary(
                name=r["name"], versions=r["count"] or 0, latest=r["latest"],
                created_at=as_utc(r["created_at"]),
                updated_at=as_utc(r["updated_at"]) if r["updated_at"] else None,
                aliases=r["aliases"],
            )
            for r in self.registry.model_summaries()
        ]

    def versions_without_ci(self) -> list[str]:
        """Refs of every version that has no CI result yet (what ``nbmci ci`` runs)."""
        return [f"{name}@{number}" for name, number in self.registry.versions_without_ci()]

    def load(self, ref: str | Ref, *, trust: bool = False) -> Any:
        """The model object of ``ref``; pickled models need ``trust=True``."""
        from nbmci.snapshot.serializers import load_model
        from nbmci.snapshot.servable import load_version_model

        if not isinstance(trust, bool):
            raise InvalidInputError(f"trust must be True or False, not {trust!r}.")
        version = self.show(ref)
        code = (version.signature.get("code") or {}).get("digest")
        model = load_version_model(self.store, version.model.format, version.model.digest,
                                   version.model.trusted_types, code, trust=trust,
                                   ref=version.ref, loader=load_model)
        if not version.model.trusted:
            from nbmci.snapshot.lineage import actor

            # the opt-in to run the artifact's code is part of the version's provenance
            self.registry.add_event("model.trusted", version.name, version.version, actor(),
                                    {"format": version.model.format,
                                     "vouched_by": version.model.vouched_by})
        return model

    def executed_notebook(self, ref: str | Ref,
                          notebook: str) -> tuple[Version, dict[str, Any], bytes]:
        """The executed copy of ``notebook`` from ``ref``'s newest CI run: the version, the
        run's entry for that notebook (status, output_digest, ...) and the notebook's bytes,
        verified against their digest."""
        version = self.show(ref)
        if version.ci is None:
            raise NotFoundError(f"{version.ref} has no CI run yet, so no executed notebook.",
                                hint=f"Run CI for it first (`nbmci ci {version.ref}`).")
        entry = next((n for n in version.ci.notebooks if n["notebook"] == notebook), None)
        if entry is None:
            known = ", ".join(repr(n["notebook"]) for n in version.ci.notebooks) or "none"
            raise NotFoundError(f"The newest CI run of {version.ref} has no notebook "
                                f"{notebook[:80]!r}.", hint=f"Its notebooks: {known}.")
        if not entry["output_digest"]:
            reason = (entry.get("error") or {}).get("reason", "it did not run")
            raise NotFoundError(f"No executed copy of {notebook!r} was stored for "
                                f"{version.ref}: {reason}.",
                                hint=f"Run CI again (`nbmci ci {version.ref}`).")
        return version, entry, self.store.get(entry["output_digest"])

    def load_data(self, ref: str | Ref) -> dict[str, Any]:
        """The data committed with ``ref``, as the DataFrames, Series and arrays it was."""
        from nbmci.snapshot.tables import read_dataset

        version = self.show(ref)
        return {key: read_dataset(self.store, info.digest) for key, info in version.data.items()}

    def diff(self, a: str | Ref, b: str | Ref) -> Diff:
        """What changed from ``a`` to ``b``: model, params, metrics, signature and data."""
        from nbmci._diff import diff_versions

        return diff_versions(self.show(a), self.show(b))

    def set_alias(self, ref: str | Ref, alias: str) -> int | None:
        """Point ``alias`` at ``ref``; returns the version it pointed at before."""
        refs.validate_alias(alias)
        name, number = self.resolve(ref)
        from nbmci.snapshot.lineage import actor

        return self.registry.set_alias(name, alias, number, actor())

    def publish(self, ref: str | Ref, *, force: bool = False) -> Publication:
        """Point ``production`` at ``ref``; refused unless ``ref`` passed CI.

        ``force=True`` overrides a missing or failed CI result and records the override in
        the event log.
        """
        from nbmci.snapshot.lineage import actor

        version = self.show(ref)
        status = version.ci.status if version.ci else "not run"
        if status != "passed" and force is not True:
            raise ConflictError(
                f"{version.ref} has not passed CI (CI: {status}); production was not moved.",
                hint=f"Run `nbmci ci {version.ref}`, or override with "
                     f"`nbmci publish {version.ref} --force` (the override is recorded).")
        forced = status != "passed"
        self._check_model_whole(version, "publish")
        self._check_servable(version)
        previous = self.registry.set_alias(version.name, PRODUCTION, version.version, actor(),
                                           {"forced": forced, "ci": status})
        return Publication(version.name, PRODUCTION, previous, version.version, forced)

    def rollback_target(self, name: str) -> tuple[int, int] | None:
        """``(production now, the version rollback would move it to)``, or None."""
        return self.registry.rollback_target(name, PRODUCTION)

    def rollback(self, name: str) -> Publication:
        """Move ``production`` of ``name`` back to the version it pointed at before."""
        if isinstance(name, str) and "@" in name:  # ``rollback wine@1``: they mean publish
            ref = Ref.parse(name)
            chosen = ref if ref.version is not None else f"{ref.name}@VERSION"
            raise InvalidInputError(
                f"Roll back takes a model name, not {name[:80]!r}: it moves "
                f"{ref.name}@production back to the version it pointed at before.",
                hint=f"To roll back, run `nbmci rollback {ref.name}`; to make a chosen "
                     f"version production, run `nbmci publish {chosen}`.")
        refs.validate_name(name)
        if self.registry.model(name) is None:
            raise ModelNotFoundError(name, self.registry.model_names())
        for _ in range(2):  # a publish or rollback landing meanwhile: check the new target
            try:
                return self._roll_back_once(name)
            except AliasMovedError:
                continue
        return self._roll_back_once(name)

    def _roll_back_once(self, name: str) -> Publication:
        """Check the rollback target's model, then move to it unless the alias moved."""
        from nbmci.snapshot.lineage import actor

        target = self.registry.rollback_target(name, PRODUCTION)
        if target is None:
            raise ConflictError(f"'{name}' has no earlier production version to roll back to.",
                                hint=f"See `nbmci log {name}`; make a version production with "
                                     f"`nbmci publish {name}@VERSION`.")
        self._check_model_whole(self.show(Ref(name, target[1])), "roll back to")
        self.registry.roll_back_alias(name, PRODUCTION, actor(), expect=target)
        return Publication(name, PRODUCTION, target[0], target[1], False, rolled_back=True)

    def _check_servable(self, version: Version) -> None:
        """Refuse to publish a version no server could load (``force`` never skips this)."""
        servability = self.checks.ensure(version)
        if servability.status == "not servable":
            raise NotServableError(version.ref, f"{servability.reason}; production was not "
                                   "moved.", hint=servability.hint or
                                   f"See `nbmci show {version.ref}`, fix the model and commit "
                                   "again.")

    def _check_model_whole(self, version: Version, action: str) -> None:
        """Refuse to point production at a version whose model object is missing or corrupt
        (a server would refuse to load it anyway); reads and hashes the model once."""
        problem = self.store.verify(version.model.digest)
        if problem is not None:
            reason = (f"its model object {version.model.digest} is missing"
                      if problem == "missing" else problem.rstrip("."))
            raise ConflictError(f"Cannot {action} {version.ref}: {reason}; production was "
                                "not moved.", hint="Run `nbmci fsck` to list every damaged "
                                                   "version.")

    def checkout(self, ref: str | Ref, out: str | os.PathLike[str]) -> Checkout:
        """Write the model file, the data as Parquet and version.json into ``out``."""
        from nbmci._maintenance import checkout

        return checkout(self, ref, Path(out))

    def fsck(self) -> FsckReport:
        """Re-hash every object and check every reference; see ``FsckReport.problems``."""
        from nbmci._maintenance import fsck

        return fsck(self)

    def gc(self, grace: float | None = None, *, dry_run: bool = False) -> GcReport:
        """Delete objects no version needs that are older than ``grace`` seconds."""
        from nbmci._maintenance import gc

        return gc(self, self.settings.gc_grace if grace is None else grace, dry_run=dry_run)


# -- helpers ---------------------------------------------------------------------------------


def _with(version: Version, **changes: Any) -> Version:
    from dataclasses import replace

    return replace(version, **changes)


# -- module-level API ------------------------------------------------------------------------

_projects: dict[tuple[str, str, str], Project] = {}
_lock = threading.Lock()


def project(path: str | os.PathLike[str] | None = None) -> Project:
    """The project for ``path`` (default: the working directory), reused across calls."""
    settings = load_settings(path)
    key = (str(settings.root), settings.store_url, settings.registry_url)
    with _lock:
        found = _projects.get(key)
        if found is None or found.settings != settings:
            found = _projects[key] = Project(settings)
        elif found.settings.extra != settings.extra:
            found.settings = settings  # [tool.nbmci.ci] etc. changed; same registry and store
        return found


def commit(model: Any, data: Any = None, name: str | None = None, message: str = "",
           params: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
           **options: Any) -> Version:
    """Commit ``model`` with its training ``data`` as the next version of ``name``.

    Args:
        model: the fitted model (scikit-learn via skops; anything else via joblib, untrusted).
        data: a DataFrame, Series or numpy array, or a dict of them, e.g. ``{"X_train": X}``.
        name: the model's name; defaults to the caller's variable name for ``model``.
        message: what changed, like a git commit message.
        params: hyperparameters to record; defaults to ``model.get_params()``.
        metrics: numbers to record with the version.
        **options: ``trust=True`` vouches for a model stored as a pickle, so ``nbmci serve``
            loads it without ``--trust-pickle``; ``format`` forces a serializer;
            ``example`` gives a few input rows when ``data`` does not hold the training
            input.

    Returns:
        The new ``Version``; ``version.ref`` is e.g. ``"clf@2"``.

    Raises:
        InvalidInputError: a bad name, data key, parameter or metric.
        UnsupportedDataError: data or a model nbmci cannot store.

    Example: ``nbmci.commit(clf, data={"X_train": X, "y_train": y}, message="more trees")``
    """
    return project().commit(model, data, name, message, params, metrics, **options)


def load(ref: str, *, trust: bool = False) -> Any:
    """Load the model of ``ref`` (``clf@3``, ``clf@latest``, ``clf@production``).

    Raises:
        NotFoundError: no such model or version.
        UntrustedModelError: a pickled model without ``trust=True``.
        CorruptObjectError: the stored bytes fail their digest check.

    Example: ``clf = nbmci.load("clf@1")``
    """
    return project().load(ref, trust=trust)


def load_data(ref: str) -> dict[str, Any]:
    """The data committed with ``ref``, e.g. ``{"X_train": DataFrame, "y_train": Series}``.

    Example: ``frames = nbmci.load_data("clf@1")``
    """
    return project().load_data(ref)


def show(ref: str) -> Version:
    """The version ``ref`` points at. Example: ``nbmci.show("clf@latest").metrics``"""
    return project().show(ref)


def versions(name: str) -> list[Version]:
    """Every version of model ``name``, newest first. Example: ``nbmci.versions("clf")``"""
    return project().versions(name)


def models() -> list[ModelSummary]:
    """Every model in the registry. Example: ``[m.name for m in nbmci.models()]``"""
    return project().models()


def diff(a: str, b: str) -> Diff:
    """Params, metrics, signature and data differences. Example: ``nbmci.diff("clf@1", "clf@2")``
    """
    return project().diff(a, b)


def checkout(ref: str, out: str | os.PathLike[str]) -> Checkout:
    """Write ``ref``'s model file and data (Parquet) into directory ``out``."""
    return project().checkout(ref, out)


def publish(ref: str, *, force: bool = False) -> Publication:
    """Point ``production`` at ``ref`` if it passed CI (``force=True`` overrides, recorded).

    Example: ``nbmci.publish("clf@4")``
    """
    return project().publish(ref, force=force)


def check(ref: str) -> Version:
    """Check now, in a fresh process, that ``ref`` can be served; see ``Version.servability``.

    Example: ``nbmci.check("clf@3").servability.summary``
    """
    return project().check(ref)


def rollback(name: str) -> Publication:
    """Move ``production`` of ``name`` back to its previous version.

    Example: ``nbmci.rollback("clf")``
    """
    return project().rollback(name)


def fsck() -> FsckReport:
    """Check every object and reference of the project's registry and store."""
    return project().fsck()


def gc(grace: float | None = None, *, dry_run: bool = False) -> GcReport:
    """Delete unreferenced objects older than ``grace`` seconds (default one day)."""
    return project().gc(grace, dry_run=dry_run)


def init(path: str | os.PathLike[str] | None = None) -> Project:
    """Create ``.nbmci/`` (registry and store) in ``path`` (default: the working directory)."""
    from nbmci.config import STATE_DIR

    root = Path(path or os.getcwd()).resolve()
    if not root.is_dir():
        raise InvalidInputError(f"{str(root)!r} is not a directory.")
    (root / STATE_DIR).mkdir(mode=0o700, exist_ok=True)
    created = project(root)
    created.registry.engine  # noqa: B018  (creates the database and its schema)
    return created

