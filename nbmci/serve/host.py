"""ModelHost: follow each model's ``production`` alias, load, smoke-test, swap atomically.

No web code here. The host polls the registry; when an alias moves it loads the new version
beside the live one (through ``Project.load``, the trust choke point, which verifies the
digest), smoke-tests it (``serve.live``: the outputs recorded at commit, replayed through the
serving path), and only then replaces the live entry. Requests hold a reference to the
``LiveModel`` they started with, so in-flight requests finish on the old model and the old
model is freed with its last reference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nbmci.api import PRODUCTION, Project
from nbmci.errors import (
    ConflictError,
    NbmciError,
    NotFoundError,
    UnavailableError,
    UntrustedModelError,
)
from nbmci.serve.live import LiveModel, describe, smoke_test

logger = logging.getLogger(__name__)
_RELOAD_WAIT = 30.0  # seconds a reload waits for the follower's current pass


class ModelNotServedError(NotFoundError):
    def __init__(self, name: str, served: Iterable[str], version: int | None = None) -> None:
        what = f"Version {version} of model '{name}'" if version else f"Model '{name}'"
        listed = ", ".join(sorted(served)) or "none yet"
        super().__init__(f"{what} is not being served. Served models: {listed}.",
                         hint=f"Publish a version with `nbmci publish {name}@VERSION`.")
        self.name = name


class VersionRefusedError(UnavailableError):
    """The published version never went live (it failed to load or its smoke test)."""

    def __init__(self, name: str, version: int, reason: str) -> None:
        super().__init__(f"{name}@{version} is published, but this server refused it: {reason}",
                         hint="Publish a version that loads, or roll back with "
                              f"`nbmci rollback {name}`; the server follows the alias.")
        self.name = name


class ReloadInProgressError(ConflictError):
    def __init__(self) -> None:
        super().__init__("reload_in_progress: another reload is running.",
                         hint="Retry when it finishes; the alias is followed anyway.")


@dataclass
class ModelState:
    """What the host knows about one model, for readiness and the status route."""

    target: int | None = None  # where production points
    failed: dict[int, str] = field(default_factory=dict)  # version -> why it never went live


@dataclass(frozen=True)
class SwapEvent:
    name: str
    kind: str  # "swapped" | "failed" | "removed"
    version: int | None
    previous: int | None = None
    reason: str | None = None


Listener = Callable[[SwapEvent], None]


class ModelHost:
    """Keeps the production version of each served model loaded and swaps it when it moves.

    Example::

        host = ModelHost(Project.open(), poll_interval=1.0)
        host.start()                      # follows the aliases in a background thread
        live = host.get("clf")            # the LiveModel a request should use
    """

    def __init__(self, project: Project, names: Iterable[str] = (), *,
                 trust_pickle: bool = False, poll_interval: float = 1.0,
                 listener: Listener | None = None) -> None:
        self.project = project
        self.names = tuple(names)
        self.trust_pickle = trust_pickle
        self.poll_interval = poll_interval
        self._listeners: list[Listener] = [listener] if listener else []
        self._live: dict[str, LiveModel] = {}  # replaced whole, never mutated: atomic swaps
        self._states: dict[str, ModelState] = {}
        self._sync_lock = threading.Lock()  # one pass over the aliases at a time
        self._reload_lock = threading.Lock()  # one manual reload at a time (else 409)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0

    # -- reads (any thread) ----------------------------------------------------------------

    @property
    def live(self) -> dict[str, LiveModel]:
        return self._live

    @property
    def is_ready(self) -> bool:
        """True once at least one model passed its smoke test and is serving."""
        return bool(self._live)

    def get(self, name: str, version: int | None = None) -> LiveModel:
        live = self._live.get(name)
        if live is None or (version is not None and live.version != version):
            state = self._states.get(name)
            refused = version if version is not None else state and state.target
            if state is not None and refused in state.failed:
                raise VersionRefusedError(name, refused, state.failed[refused])
            raise ModelNotServedError(name, self._live, version)
        return live

    def state(self, name: str) -> ModelState:
        return self._states.setdefault(name, ModelState())

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- the follower --------------------------------------------------------------------

    def start(self) -> None:
        """Follow the aliases in a daemon thread; the first sync runs there too."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="nbmci-serve-host",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with self._sync_lock:
                    self._sync(retry_failed=False)
            except NbmciError as exc:  # registry down: keep serving what is loaded
                logger.warning("reading the registry failed: %s", exc)
            except Exception:
                logger.exception("the alias follower hit a bug; it keeps running")
            self._stop.wait(self.poll_interval)

    def reload(self, names: Iterable[str] | None = None) -> dict[str, int | None]:
        """Sync now (also retrying versions that failed); 409 if another reload is running.

        A reload waits for the background follower's current pass (bounded), since the
        follower is not a competing request."""
        only = tuple(names) if names else None
        if not self._reload_lock.acquire(blocking=False):
            raise ReloadInProgressError()
        try:
            if not self._sync_lock.acquire(timeout=_RELOAD_WAIT):
                raise ReloadInProgressError()
            try:
                self._sync(retry_failed=True, only=only)
            finally:
                self._sync_lock.release()
        finally:
            self._reload_lock.release()
        return {n: (m.version if m else None) for n in (only or tuple(self._live))
                for m in [self._live.get(n)]}

    def _targets(self) -> dict[str, int | None]:
        summaries = {s["name"]: s["aliases"].get(PRODUCTION)
                     for s in self.project.registry.model_summaries()}
        if self.names:
            return {n: summaries.get(n) for n in self.names}
        return {n: t for n, t in summaries.items() if t is not None or n in self._live}

    def _sync(self, *, retry_failed: bool, only: tuple[str, ...] | None = None) -> None:
        self.polls += 1
        for name, target in self._targets().items():
            if only is not None and name not in only:
                continue
            state = self.state(name)
            state.target = target
            live = self._live.get(name)
            if target is None:
                if live is not None:
                    logger.warning("%s has no production version any more; %s keeps serving",
                                   name, live.ref)
                continue
            if live is not None and live.version == target:
                continue
            if target in state.failed and not retry_failed:
                continue
            self._bring_up(name, target, live)

    def _bring_up(self, name: str, target: int, live: LiveModel | None) -> None:
        ref = f"{name}@{target}"
        started = time.perf_counter()
        try:
            candidate = self._load(ref)
        except NbmciError as exc:
            reason = str(exc)
            self.state(name).failed[target] = reason
            logger.error("%s did not go live: %s", ref, reason)
            self._emit(SwapEvent(name, "failed", target, live.version if live else None, reason))
            return
        except Exception as exc:  # a loader bug or an out-of-memory: never take the old one down
            reason = f"{type(exc).__name__}: {exc}"
            self.state(name).failed[target] = reason
            logger.exception("%s did not go live", ref)
            self._emit(SwapEvent(name, "failed", target, live.version if live else None, reason))
            return
        self._live = {**self._live, name: candidate}  # the one atomic step
        self.state(name).failed.pop(target, None)
        logger.info("%s is live (was %s), loaded in %.3fs, predicting %s", ref,
                    live.ref if live else "none", time.perf_counter() - started,
                    ("on the event loop" if candidate.inline else "in threads")
                    + (" through a shortcut" if candidate.shortcut or candidate.compiled
                       else ""))
        self._emit(SwapEvent(name, "swapped", target, live.version if live else None))

    def _load(self, ref: str) -> LiveModel:
        version = self.project.show(ref)
        artifact = version.model
        if not artifact.trusted and not (self.trust_pickle or artifact.vouched):
            raise UntrustedModelError(
                f"Model '{ref}' is stored as a pickle ({artifact.format}) and nobody vouched "
                "for it at commit; the server does not load such pickles because loading one "
                "can run arbitrary code.",
                hint="If you trust its author, commit it again with `nbmci.commit(..., "
                     "trust=True)` and publish that version, or restart with `nbmci serve "
                     "--trust-pickle`; better, re-commit it in a safe format (skops for "
                     "scikit-learn).")
        if not artifact.trusted and not self.trust_pickle:
            logger.warning("%s is a pickle (%s); loading it because %s vouched for it at commit",
                           ref, artifact.format, artifact.vouched_by)
        model = self.project.load(ref, trust=self.trust_pickle or artifact.vouched)
        return smoke_test(version, describe(version, model))

    def _emit(self, event: SwapEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("a swap listener failed")
