"""The CI runner: every configured evaluation notebook against each version, with papermill.

One warm process runs everything: papermill is imported once, kernels are started (and have
imported what the notebooks import) before they are needed, and identical evaluations (same
model, data, notebook and parameters) are answered from the cache instead of being re-run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nbmci.api import PRODUCTION, Project
from nbmci.ci.config import CIConfig, ModelCI, NotebookSpec
from nbmci.ci.gates import GateResult
from nbmci.ci.kernels import Kernel, KernelPool, imported_modules
from nbmci.digest import canonical_json, hash_bytes
from nbmci.errors import CancelledError, InvalidInputError
from nbmci.recording import numbers, read_records
from nbmci.results import UNKNOWN, Servability

logger = logging.getLogger(__name__)

Listener = Callable[[str, "Job", "NotebookOutcome | None"], None]  # event, job, outcome


@dataclass(frozen=True)
class Job:
    """One notebook to run against one version."""

    name: str
    number: int
    notebook: NotebookSpec
    cache_key: str
    notebook_digest: str
    auxiliary: bool = False  # a production baseline for relative gates, not itself under test
    kernel: Kernel | None = None  # None: the project's default kernel
    timeout: float | None = None  # None: the project's default time limit

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class NotebookOutcome:
    notebook: str
    status: str  # passed | error
    records: dict[str, dict[str, Any]]
    output_digest: str | None
    error: dict[str, Any] | None
    duration: float
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "status": self.status, "records": self.records,
                "output_digest": self.output_digest, "error": self.error,
                "duration": self.duration, "cached": self.cached}


@dataclass(frozen=True)
class VersionOutcome:
    ref: str
    status: str  # passed | failed | error
    metrics: dict[str, float]
    gates: list[GateResult]
    notebooks: list[NotebookOutcome]
    duration: float
    baseline: str | None = None  # the production ref relative gates compared with
    servability: Servability = UNKNOWN  # loads alone and reproduces its outputs (own check)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "status": self.status, "metrics": self.metrics,
                "gates": [g.to_dict() for g in self.gates],
                "notebooks": [n.to_dict() for n in self.notebooks], "duration": self.duration,
                "baseline": self.baseline, "servability": self.servability.to_dict()}


@dataclass
class CIReport:
    outcomes: list[VersionOutcome] = field(default_factory=list)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.status == "passed" for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "duration": self.duration,
                "versions": [o.to_dict() for o in self.outcomes]}


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> (2, 4): this job runs the second of four slices of the work."""
    if text is None:
        return None
    index, _, total = text.partition("/")
    if not (index.isdigit() and total.isdigit()) or not 1 <= int(index) <= int(total):
        raise InvalidInputError(f"--shard {text!r} is not I/N with 1 <= I <= N, like 1/4.")
    return int(index), int(total)


class Runner:
    """Plans and runs CI for a project. Used by ``nbmci ci`` and ``%mci_ci``."""

    def __init__(self, project: Project, config: CIConfig, *, jobs: int | None = None,
                 listener: Listener | None = None) -> None:
        self.project = project
        self.config = config
        self.jobs = max(1, jobs or config.jobs)
        self.listener = listener
        self._digests = {spec.name: hash_bytes(spec.path.read_bytes())
                         for spec in config.notebooks}  # every model's
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Start no further notebooks (thread-safe). The running ones finish, then ``run``
        raises CancelledError and records nothing."""
        self._cancelled.set()

    # -- planning ----------------------------------------------------------------------------

    def targets(self, refs: list[str] | None) -> list[tuple[str, int]]:
        """The versions to evaluate: ``refs``, or every version without a CI result."""
        if refs:
            return list(dict.fromkeys(self.project.resolve(ref) for ref in refs))
        return self.project.registry.versions_without_ci()

    def plan(self, targets: list[tuple[str, int]],
             shard: tuple[int, int] | None = None) -> list[Job]:
        """Jobs for ``targets`` (this shard's share) plus production baselines they need."""
        targets = sorted(targets)
        if shard is not None:  # whole versions per shard: a verdict needs all its notebooks
            index, total = shard
            targets = [t for i, t in enumerate(targets) if i % total == index - 1]
        wanted = [self._job(name, number, spec, self.config.for_model(name))
                  for name, number in targets for spec in self.config.for_model(name).notebooks]
        jobs = {(j.ref, j.notebook.name): j for j in wanted}
        for name in sorted({j.name for j in wanted}):
            model = self.config.for_model(name)
            production = self.project.registry.alias_target(name, PRODUCTION)
            if production is None or not any(g.relative for g in model.gates):
                continue
            for spec in model.notebooks:
                job = self._job(name, production, spec, model, auxiliary=True)
                jobs.setdefault((job.ref, spec.name), job)
        return list(jobs.values())

    def _job(self, name: str, number: int, spec: NotebookSpec, model: ModelCI,
             auxiliary: bool = False) -> Job:
        version = self.project.show(f"{name}@{number}")
        # everything a notebook can evaluate: the model, its data, and what was recorded
        # with it (not who committed it or when)
        key = hash_bytes(canonical_json({
            "model": version.model.digest,
            "data": sorted(d.digest for d in version.data.values()),
            "params": version.params,
            "metrics": version.metrics,
            "notebook": self._digests[spec.name],
            "parameters": spec.parameters,
            "kernel": model.kernel.name,
        }))
        return Job(name, number, spec, key, self._digests[spec.name], auxiliary, model.kernel,
                   model.timeout)

    # -- running -----------------------------------------------------------------------------

    def run(self, refs: list[str] | None = None, shard: tuple[int, int] | None = None
            ) -> CIReport:
        """Evaluate, apply gates, record every result in the registry; returns the report."""
        started = time.perf_counter()
        jobs = self.plan(self.targets(refs), shard)
        outcomes = self._execute_all(jobs)
        if self._cancelled.is_set():
            raise CancelledError("CI was cancelled before every notebook ran; nothing was "
                                 "recorded.", hint="Run it again to evaluate these versions.")
        report = CIReport()
        by_version: dict[tuple[str, int], list[Job]] = {}
        for job in jobs:
            by_version.setdefault((job.name, job.number), []).append(job)
        for (name, number), version_jobs in by_version.items():
            if all(job.auxiliary for job in version_jobs):
                continue
            report.outcomes.append(self._conclude(name, number, version_jobs, outcomes))
        report.duration = time.perf_counter() - started
        return report

    def _execute_all(self, jobs: list[Job]) -> dict[tuple[str, str], NotebookOutcome]:
        outcomes: dict[tuple[str, str], NotebookOutcome] = {}
        todo = []
        for job in jobs:
            cached = self._cached(job)
            if cached is not None:
                outcomes[(job.ref, job.notebook.name)] = cached
                self._notify("cached", job, cached)
            else:
                todo.append(job)
        # one pool per kernel and notebook folder (kernels start in the notebook's folder)
        groups: dict[tuple[Kernel, Any], list[Job]] = {}
        for job in todo:
            kernel = job.kernel or self.config.default.kernel
            groups.setdefault((kernel, job.notebook.path.parent), []).append(job)
        for (kernel, cwd), group in groups.items():
            pool = KernelPool(kernel, min(len(group), self.jobs + 1), cwd=cwd,
                              env=self._kernel_env(),
                              warm_modules=self._warm_modules([j.notebook for j in group]))
            try:
                with ThreadPoolExecutor(self.jobs, thread_name_prefix="nbmci-ci") as workers:
                    try:
                        runs = workers.map(self._run, group, [pool] * len(group))
                        for job, outcome in zip(group, runs, strict=True):
                            outcomes[(job.ref, job.notebook.name)] = outcome
                    except BaseException:  # interrupted: end the running notebooks now
                        self._cancelled.set()
                        pool.close()
                        raise
            finally:
                pool.close()
        return outcomes

    def _cached(self, job: Job) -> NotebookOutcome | None:
        row = self.project.registry.cached_notebook(job.cache_key)
        if row is None or (row["output_digest"] and not self.project.store.has(
                row["output_digest"])):
            return None
        return NotebookOutcome(job.notebook.name, row["status"], row["records"],
                               row["output_digest"], row["error"], 0.0, True)

    def _kernel_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
        env["NBMCI_ROOT"] = str(self.project.settings.root)
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        return env

    def _warm_modules(self, specs: list[NotebookSpec]) -> list[str]:
        import nbformat

        sources = []
        for spec in {s.path: s for s in specs}.values():
            notebook = nbformat.read(spec.path, as_version=4)
            sources += [c.source for c in notebook.cells if c.cell_type == "code"]
        return imported_modules(sources)

    def _run(self, job: Job, pool: KernelPool) -> NotebookOutcome:
        from nbmci.ci.execute import execute_notebook

        if self._cancelled.is_set():
            return NotebookOutcome(job.notebook.name, "error", {}, None,
                                   {"reason": "cancelled"}, 0.0, False)
        self._notify("started", job, None)
        started = time.perf_counter()
        try:
            manager = pool.take()
        except Exception as exc:
            outcome = NotebookOutcome(job.notebook.name, "error", {}, None,
                                      {"reason": f"the kernel did not start: {exc}"},
                                      time.perf_counter() - started, False)
            self._notify("finished", job, outcome)
            return outcome
        try:
            kernel = job.kernel or self.config.default.kernel
            executed = execute_notebook(job.notebook, job.ref, manager,
                                        job.timeout or self.config.default.timeout,
                                        kernel.language)
        finally:
            threading.Thread(target=pool.discard, args=(manager,), daemon=True).start()
        digest = None
        if executed.notebook_bytes is not None:
            digest = self.project.store.put_bytes(executed.notebook_bytes).digest
        records = read_records(executed.cells)
        outcome = NotebookOutcome(job.notebook.name, "error" if executed.error else "passed",
                                  records, digest, executed.error,
                                  time.perf_counter() - started, False)
        self._notify("finished", job, outcome)
        return outcome

    def _notify(self, event: str, job: Job, outcome: NotebookOutcome | None) -> None:
        if self.listener is not None:
            self.listener(event, job, outcome)

    # -- concluding --------------------------------------------------------------------------

    def _conclude(self, name: str, number: int, jobs: list[Job],
                  outcomes: dict[tuple[str, str], NotebookOutcome]) -> VersionOutcome:
        from nbmci.snapshot.lineage import actor

        ref = f"{name}@{number}"
        model = self.config.for_model(name)
        results = [outcomes[(ref, spec.name)] for spec in model.notebooks]
        metrics: dict[str, float] = {}
        for outcome in results:
            metrics.update(numbers(outcome.records))
        production = self.project.registry.alias_target(name, PRODUCTION)
        baseline: dict[str, float] | None = None
        if production is not None:
            baseline = {}
            for spec in model.notebooks:
                found = outcomes.get((f"{name}@{production}", spec.name))
                if found is not None and found.status == "passed":
                    baseline.update(numbers(found.records))
        errored = [o.notebook for o in results if o.status == "error"]
        if errored:  # what the gates would say is about the error, not the model
            gates = [gate.not_evaluated(f"{', '.join(errored)} ended in an error")
                     for gate in model.gates]
        else:
            gates = [gate.evaluate(metrics, baseline) for gate in model.gates]
        servability = self.project.checks.for_ci(self.project.show(ref))
        if errored:
            status = "error"
        elif not all(g.ok for g in gates) or servability.status == "not servable":
            status = "failed"
        else:
            status = "passed"
        duration = sum(o.duration for o in results)
        order = [spec.name for spec in model.notebooks]
        self.project.registry.add_ci_run(name, number, {
            "started_at": dt.datetime.now(dt.UTC), "status": status, "metrics": metrics,
            "gates": [g.to_dict() for g in gates], "duration": duration,
            "environment": _environment(model.kernel),
        }, [{
            "notebook": o.notebook, "notebook_digest": self._digests[o.notebook],
            "parameters": {"model_ref": ref, **spec.parameters},
            "cache_key": job.cache_key, "cached": o.cached, "status": o.status,
            "records": o.records, "output_digest": o.output_digest, "error": o.error,
            "duration": o.duration,
        } for o, spec, job in zip(results, model.notebooks,
                                  sorted(jobs, key=lambda j: order.index(j.notebook.name)),
                                  strict=True)],
            actor=actor())
        return VersionOutcome(ref, status, metrics, gates, results, duration,
                              f"{name}@{production}" if production is not None else None,
                              servability)


def _environment(kernel: Kernel) -> dict[str, Any]:
    from nbmci.snapshot.lineage import package_version

    return {"python": platform.python_version(), "platform": platform.platform(terse=True),
            "host": platform.node(), "kernel": kernel.name,
            "packages": {p: package_version(p) for p in ("nbmci", "papermill", "nbclient",
                                                         "nbformat")}}

