"""Background CI jobs of the server extension: one at a time, followed by polling, cancellable.

The CI runner calls its listener on its worker threads; a job only counts and remembers under
its lock, and the handlers read a snapshot (``to_dict``) from the server's thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbmci.errors import CancelledError, ConflictError, InvalidInputError, NbmciError, NotFoundError

if TYPE_CHECKING:
    from nbmci.api import Project
    from nbmci.ci.runner import CIReport, NotebookOutcome, Runner
    from nbmci.ci.runner import Job as NotebookJob

logger = logging.getLogger(__name__)

KEPT = 20  # finished jobs remembered (in memory, until the server restarts)
_ID = re.compile(r"[0-9a-f]{1,32}")
FINAL = frozenset({"passed", "failed", "error", "cancelled"})


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Job:
    """One CI run of one version, as the panel follows it."""

    kind = "ci"

    def __init__(self, ref: str, total: int) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.ref = ref
        self.total = total
        self.done = 0
        self.state = "running"
        self.message = f"CI of {ref} started"
        self.started_at = _now()
        self.finished_at: str | None = None
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.hint: str | None = None
        self.reason: str | None = None  # why it failed, for the panel: no ref, no command
        self.cancel_requested = False
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"id": self.id, "kind": self.kind, "ref": self.ref, "state": self.state,
                    "done": self.done, "total": self.total, "message": self.message,
                    "started_at": self.started_at, "finished_at": self.finished_at,
                    "result": self.result, "error": self.error, "hint": self.hint,
                    "reason": self.reason, "cancel_requested": self.cancel_requested}

    # -- called by the runner, on its threads --------------------------------------------------

    def on_event(self, event: str, job: NotebookJob, outcome: NotebookOutcome | None) -> None:
        with self._lock:
            if event == "started":
                self.message = f"Running {job.notebook.name} on {job.ref}"
            elif event in ("finished", "cached"):
                self.done = min(self.done + 1, self.total)
                how = "from the cache" if event == "cached" else ""
                status = outcome.status if outcome is not None else "done"
                self.message = f"{job.notebook.name} on {job.ref}: {status} {how}".strip()

    def run(self, runner: Runner) -> None:
        """The job's thread: run CI, then record how it ended (never raises)."""
        try:
            report = runner.run([self.ref])
        except CancelledError as exc:
            self._finish("cancelled", f"CI of {self.ref} was cancelled", error=exc.message,
                         reason=exc.message.rstrip("."))
        except NbmciError as exc:
            self._finish("error", f"CI of {self.ref} could not run", error=exc.message,
                         hint=exc.hint, reason=exc.message.rstrip("."))
        except Exception:
            logger.exception("nbmci CI job %s (%s) failed", self.id, self.ref)
            internal = "internal error in nbmci's CI job; the Jupyter server log has the details"
            self._finish("error", f"CI of {self.ref} could not run",
                         error=f"{internal[0].upper()}{internal[1:]}. Please report it.",
                         reason=internal)
        else:
            self._conclude(report)

    def _conclude(self, report: CIReport) -> None:
        outcome = next((o for o in report.outcomes if o.ref == self.ref), None)
        if outcome is None:
            self._finish("error", f"CI of {self.ref} recorded no result",
                         error="The CI run ended without a result for this version.")
            return
        verdict = {"passed": "passed", "failed": "failed its gates"}.get(outcome.status,
                                                                          "had errors")
        self._finish(outcome.status, f"{self.ref} {verdict} ({report.duration:.1f}s)",
                     result=report.to_dict(), reason=_why(outcome.to_dict()))

    def _finish(self, state: str, message: str, *, result: dict[str, Any] | None = None,
                error: str | None = None, hint: str | None = None,
                reason: str | None = None) -> None:
        with self._lock:
            self.state, self.message, self.result, self.error = state, message, result, error
            self.hint, self.reason = hint, reason
            if state == "passed" or state == "failed":
                self.done = self.total
            self.finished_at = _now()

    def cancel(self) -> None:
        with self._lock:
            if self.state != "running":
                return
            self.cancel_requested = True
            self.message = (f"Cancelling CI of {self.ref}: no further notebook starts; "
                            "running ones finish first")
            cancel = self._cancel
        if cancel is not None:
            cancel()


def _why(outcome: dict[str, Any]) -> str | None:
    """Why a version's CI did not pass: its notebooks' errors, else its failed gates."""
    errors = [f"{n.get('notebook')}: {(n.get('error') or {}).get('reason') or n.get('status')}"
              for n in outcome.get("notebooks", []) if n.get("status") != "passed"]
    gates = [str(g.get("detail") or f"{g.get('metric')} {g.get('expression')}")
             for g in outcome.get("gates", []) if g.get("status") == "failed"]
    servability = outcome.get("servability") or {}
    if servability.get("status") == "not servable":
        gates.append(f"not servable: {servability.get('reason')}")
    return "; ".join(errors or gates) or None


class JobManager:
    """The server's CI jobs; at most one runs at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start_ci(self, project: Project, name: str, version: int | None) -> Job:
        """Start CI of ``name@version`` (default: latest) on a thread; returns its job.

        Raises:
            ConflictError: a CI job is already running.
            NotFoundError: no such model or version.
            ConfigError: the project's ``[tool.nbmci.ci]`` is missing or wrong.
        """
        from nbmci.ci.config import load_ci_config
        from nbmci.ci.runner import Runner

        with self._lock:  # held while planning, so two starts cannot both pass the check
            running = next((j for j in self._jobs.values() if j.running), None)
            if running is not None:
                raise ConflictError(
                    f"CI of {running.ref} is already running (job {running.id}); nbmci runs "
                    "one CI job at a time.",
                    hint=f"Wait for it to finish, or cancel it (POST nbmci/api/jobs/"
                         f"{running.id}/cancel).")
            name, number = project.resolve(f"{name}@{version if version else 'latest'}")
            config = load_ci_config(project.settings)
            ref = f"{name}@{number}"
            job = Job(ref, 0)
            runner = Runner(project, config, listener=job.on_event)
            job.total = len(runner.plan(runner.targets([ref])))
            job._cancel = runner.cancel
            self._jobs[job.id] = job
            self._forget_old()
            threading.Thread(target=job.run, args=(runner,), name=f"nbmci-lab-{job.id}",
                             daemon=True).start()
        logger.info("nbmci: CI job %s started for %s (%d notebooks)", job.id, ref, job.total)
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if not j.running]
        for job in finished[:max(0, len(self._jobs) - KEPT)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; InvalidInputError for a malformed id, NotFoundError if unknown."""
        if not isinstance(job_id, str) or not _ID.fullmatch(job_id):
            raise InvalidInputError(f"{job_id[:80]!r} is not a job id.",
                                    hint="Job ids are the hexadecimal ids that GET "
                                         "nbmci/api/jobs lists.")
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"Job '{job_id}' not found.",
                                hint="Jobs are kept in memory until the server restarts; "
                                     "GET nbmci/api/jobs lists them.")
        return job

    def list(self) -> list[Job]:
        """Every remembered job, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> Job:
        """Ask a running job to stop (a finished one is returned unchanged)."""
        job = self.get(job_id)
        job.cancel()
        return job

    def close(self) -> None:
        """Cancel every running job (the server is stopping)."""
        for job in self.list():
            job.cancel()
