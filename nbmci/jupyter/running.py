"""``%mci_ci``'s run: the CI runner on a thread of its own, its progress shown from the cell's.

The runner calls its listener on its worker threads. Widgets are changed only here, on the
thread that runs the cell: traitlets and ipywidgets' syncing are not thread-safe, and a comm
message sent from another thread reaches the right cell only if ipykernel can tell which
request it belongs to (ipykernel 7 guesses the last one; ipykernel 6 may send none, and
nbclient and the frontends drop such messages). So the listener only queues the events.

An interrupt (Kernel > Interrupt, or papermill's) cancels the run: no further notebook starts,
the ones running finish, nothing is recorded and the cell fails with ``KeyboardInterrupt``.
A second interrupt stops waiting for the running ones.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nbmci.jupyter.output import Show
from nbmci.jupyter.widgets import CIProgress

if TYPE_CHECKING:
    from nbmci.api import Project
    from nbmci.ci.runner import CIReport, Job, NotebookOutcome

T = TypeVar("T")
_POLL = 0.1  # seconds between looks at the runner's thread when no event comes


class Events:
    """The runner's events, queued on its threads and applied to a view on this one."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, Job, NotebookOutcome | None]] = \
            queue.SimpleQueue()
        self.on_stop: Callable[[], None] | None = None  # the runner's cancel

    def listener(self, event: str, job: Job, outcome: NotebookOutcome | None) -> None:
        """The runner's listener, called on its worker threads."""
        self._queue.put((event, job, outcome))

    def follow(self, work: Callable[[], T], view: CIProgress) -> T:
        """``work()`` on a thread; its events reach ``view`` here until it returns."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = work()
            except BaseException as exc:  # raised again on the cell's thread below
                box["error"] = exc

        thread = threading.Thread(target=target, name="nbmci-ci", daemon=True)
        thread.start()
        try:
            self._apply_until_done(thread, view)
        except KeyboardInterrupt:
            if self.on_stop is not None:
                self.on_stop()  # no further notebook starts; the run then records nothing
            view.stopping()
            self._apply_until_done(thread, view)  # a second interrupt ends the wait
            if "result" not in box:  # else every notebook had started: the run is complete
                raise
        if "error" in box:
            raise box["error"]
        result: T = box["result"]
        return result

    def _apply_until_done(self, thread: threading.Thread, view: CIProgress) -> None:
        while thread.is_alive() or not self._queue.empty():
            try:
                view.apply(*self._queue.get(timeout=_POLL))
            except queue.Empty:
                continue


def run_ci(project: Project, refs: list[str], jobs: int | None) -> tuple[CIReport, Show | None]:
    """Run CI for ``refs`` (default: every version without a CI result) with a progress view.

    Returns the report and where to show its view: in place of the progress, or None when
    nothing ran.
    """
    from nbmci.ci.config import load_ci_config
    from nbmci.ci.runner import CIReport, Runner

    config = load_ci_config(project.settings)
    events = Events()
    runner = Runner(project, config, jobs=jobs, listener=events.listener)
    events.on_stop = runner.cancel
    targets = runner.targets(refs or None)  # unknown refs fail here, before anything shows
    if not targets:
        return CIReport(), None
    progress = CIProgress(runner.plan(targets))
    progress.start()
    chosen = refs or [f"{name}@{number}" for name, number in targets]  # what the bar counts
    try:
        report = events.follow(lambda: runner.run(chosen), progress)
    except BaseException:
        progress.failed()
        raise
    return report, progress.show
