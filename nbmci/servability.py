"""Servability verdicts of a project's versions: checked in the background after a commit, or
now (CI, ``publish``, ``nbmci check``), and recorded in the registry.

The check itself is ``nbmci.snapshot.servable``: load from the store alone in a fresh process
and replay the outputs recorded on the example rows. A commit must not wait for a fresh
process, so it queues the check on one worker thread (one fresh process at a time) and
returns; ``Version.servability`` says ``checking`` until the verdict is in the registry.
``publish`` waits for a queued check, or runs one, before it moves an alias.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nbmci._rows import KIND
from nbmci.digest import canonical_json, hash_bytes
from nbmci.results import Servability, Version

if TYPE_CHECKING:
    from nbmci.api import Project

logger = logging.getLogger(__name__)
WAIT = 330.0  # seconds publish waits for a check started at commit


class Checks:
    """The servability checks of one project (``Project.checks``)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._pending: dict[tuple[str, int], Future[Servability]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._memo: dict[str, tuple[bool, dict[str, Any]]] = {}  # same model + rows: verdict

    def is_pending(self, version: Version) -> bool:
        future = self._pending.get((version.name, version.version))
        return future is not None and not future.done()

    def refuse(self, version: Version, reason: str, hint: str | None) -> Servability:
        """Record that ``version`` is not servable for a reason known without a check."""
        detail = {"reason": reason, "hint": hint, "where": "commit", "seconds": 0.0}
        self.project.registry.add_check(version.name, version.version, KIND, False, detail)
        return Servability("not servable", reason, hint, "commit")

    def start(self, version: Version, *, trust: bool) -> None:
        """Queue a check of ``version`` in the background (one at a time)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="nbmci-servable")
            future = self._executor.submit(self._run_logged, version, "commit", trust)
            self._pending[(version.name, version.version)] = future

    def _run_logged(self, version: Version, where: str, trust: bool) -> Servability:
        try:
            return self.run(version, where=where, trust=trust)
        except Exception:  # a registry outage, say: publish will check again
            logger.exception("the servability check of %s failed to run", version.ref)
            return Servability("unknown")

    def wait(self, version: Version, timeout: float = WAIT) -> None:
        future = self._pending.get((version.name, version.version))
        if future is not None:
            future.result(timeout)

    def run(self, version: Version, *, where: str, trust: bool | None = None,
            again: bool = False) -> Servability:
        """Check ``version`` now in a fresh process and record the verdict. ``trust``: load a
        pickle (default: only when it is vouched for); ``again``: even if this process saw
        the same model and rows checked already."""
        from nbmci.snapshot.servable import check_in_fresh_process

        request = self.request(version, trust=trust)
        if request is None:  # nothing to replay: no example rows, or an older version
            if version.servability.status == "not servable":
                return version.servability
            return Servability("unknown", "committed before servability checks existed")
        key = hash_bytes(canonical_json({k: v for k, v in request.items()
                                         if k not in ("ref", "store")}))
        remembered = self._memo.get(key)
        if remembered is not None and not again:  # same model and rows: checked already
            passed, detail = remembered[0], {**remembered[1], "where": where}
        else:
            verdict = check_in_fresh_process(request)
            passed, detail = verdict.servable, {**verdict.to_dict(), "where": where}
            del detail["servable"]
            self._memo[key] = (passed, detail)
        self.project.registry.add_check(version.name, version.version, KIND, passed, detail)
        if not passed:
            logger.warning("%s is not servable: %s", version.ref, detail.get("reason"))
        return Servability("servable" if passed else "not servable", detail.get("reason"),
                           detail.get("hint"), where, None, detail.get("seconds"))

    def request(self, version: Version, *, trust: bool | None) -> dict[str, Any] | None:
        signature = version.signature
        if "schema" not in signature:
            return None
        artifact = version.model
        allowed = artifact.trusted or artifact.vouched if trust is None else trust
        code = signature.get("code") or {}
        return {"store": self.project.settings.store_url, "format": artifact.format,
                "digest": artifact.digest, "trusted_types": artifact.trusted_types,
                "code": code.get("digest"), "trust": bool(allowed), "ref": version.ref,
                "signature": {k: signature.get(k) for k in
                              ("schema", "example", "outputs_recorded")}}

    def current(self, version: Version) -> Version:
        """``version`` with ``checking`` while its commit's check runs in this process."""
        if version.servability.status == "unknown" and self.is_pending(version):
            return replace(version, servability=Servability("checking", where="commit"))
        return version

    def ensure(self, version: Version) -> Servability:
        """The verdict ``publish`` goes by: a check running in this process is waited for,
        and a version never checked is checked now."""
        if self.is_pending(version):
            self.wait(version)
            version = self.project.show(version.ref)
        if version.servability.status in ("servable", "not servable"):
            return version.servability
        return self.run(version, where="publish")

    def for_ci(self, version: Version) -> Servability:
        """The verdict CI reports: checked again here, in this machine's environment, except
        for a pickle nobody vouched for, which only its committer's session may load (its
        commit-time verdict stands)."""
        self.wait(version)
        version = self.project.show(version.ref)
        artifact = version.model
        if not artifact.trusted and not artifact.vouched and \
                version.servability.status in ("servable", "not servable"):
            return version.servability
        return self.run(version, where="ci")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
