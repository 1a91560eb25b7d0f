"""ipywidgets views of the Python API's results, built from ``render``'s tables.

Every view is an ipywidgets 8 widget whose ``_repr_mimebundle_`` also carries ``text/html``
and ``text/plain``, so executed notebooks read well where no widget manager runs (papermill
output, nbconvert, GitHub) and in terminals.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import DisplayHandle, display

from nbmci.errors import listed
from nbmci.jupyter import render
from nbmci.jupyter.markup import FONT, Html, Table, table_html, tag, to_html, to_text
from nbmci.jupyter.status import Status
from nbmci.results import Diff, Publication, Version

if TYPE_CHECKING:  # the CI engine is imported only when %mci_ci runs
    from nbmci.ci.runner import CIReport, Job, NotebookOutcome

LARGE_COMMIT_BYTES = 32_000_000  # commits smaller than this finish before a bar would help


class _Fallback:
    """Adds HTML and text to a widget's mimebundle; the widget view stays the first choice."""

    _fallback: tuple[str, str] = ("", "")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        bundle["text/html"], bundle["text/plain"] = self._fallback
        return bundle


class _TablesView(_Fallback, widgets.HTML):
    def __init__(self, heading: str, tables: Sequence[Table]) -> None:
        markup = to_html(heading, tables)
        super().__init__(value=markup)
        self._fallback = (markup, to_text(heading, tables))


class VersionCard(_TablesView):
    """A version: ref, bytes stored new vs deduplicated, digests, servability, input schema,
    params, lineage. While the servability check started at commit runs, the card says so
    and redraws itself with the verdict."""

    def __init__(self, version: Version) -> None:
        super().__init__(render.version_heading(version), render.version_tables(version))
        self.version = version
        if version.servability.status == "checking":
            threading.Thread(target=self._follow_check, name="nbmci-card", daemon=True).start()

    def _follow_check(self) -> None:
        import nbmci

        try:
            nbmci.project().checks.wait(self.version)
            version = nbmci.show(self.version.ref)
        except Exception:  # the kernel is going away, say: the card keeps what it shows
            return
        heading, tables = render.version_heading(version), render.version_tables(version)
        self.version = version
        self._fallback = (to_html(heading, tables), to_text(heading, tables))
        self.value = self._fallback[0]


class CheckoutCard(_TablesView):
    """Which variables a checkout restored, and what they hold."""

    def __init__(self, version: Version, variable: str, data: Sequence[str]) -> None:
        super().__init__(f"Checked out {version.ref}",
                         render.checkout_tables(version, variable, data))
        self.version = version


class StatusView(_TablesView):
    """Where the registry is, the models and their production versions."""

    def __init__(self, status: Status) -> None:
        super().__init__("nbmci status", render.status_tables(status))
        self.status = status


class CIReportView(_TablesView):
    """A CI run: each version's status badge, CI metrics, gates or errors, time and cache use."""

    def __init__(self, report: CIReport) -> None:
        super().__init__(render.ci_heading(report), render.ci_tables(report))
        self.report = report


class PublicationView(_Fallback, widgets.HTML):
    """One line: where ``production`` (or another alias) points now, and where it pointed."""

    def __init__(self, publication: Publication) -> None:
        line = render.publication_line(publication)
        markup = tag("div", line, style=FONT)
        super().__init__(value=markup)
        self._fallback = (markup, line)
        self.publication = publication


class VersionLog(_Fallback, widgets.VBox):
    """The versions table, newest first, with a chart of the metric chosen in a dropdown."""

    def __init__(self, versions: Sequence[Version], metric: str | None = None) -> None:
        self.versions = list(versions)
        heading, table = render.log_heading(self.versions), render.log_table(self.versions)
        metrics = render.chart_metrics(self.versions)
        self.chart = widgets.HTML()
        chosen = metric or (metrics[0] if metrics else None)
        self.metric = widgets.Dropdown(options=metrics, value=chosen, description="metric")
        self.metric.observe(self._draw, names="value")
        self._draw()
        controls: list[widgets.Widget] = [self.metric, self.chart] if metrics else []
        super().__init__(children=[widgets.HTML(to_html(heading, [table])), *controls])
        self._fallback = (to_html(heading, [table], Html(self.chart.value)),
                          to_text(heading, [table]))

    def _draw(self, _change: object = None) -> None:
        chosen = self.metric.value
        self.chart.value = render.metric_chart(self.versions, chosen) if chosen else ""


class DiffView(_Fallback, widgets.VBox):
    """Two versions side by side, one tab per section, differences highlighted."""

    def __init__(self, diff: Diff) -> None:
        heading, tables = render.diff_heading(diff), render.diff_tables(diff)
        tabs = widgets.Tab(children=[widgets.HTML(tag("div", table_html(t), style=FONT))
                                     for t in tables],
                           titles=[t.title for t in tables])
        title = widgets.HTML(tag("div", tag("strong", heading), style=FONT))
        super().__init__(children=[title, tabs])
        self._fallback = (to_html(heading, tables), to_text(heading, tables))
        self.diff = diff


class CommitProgress:
    """A commit's progress callback: shows a bar once the commit turns out to be large.

    Use it as a context manager around the commit; ``show(card)`` then puts the card where
    the bar was, so a finished commit leaves one output, and a failed one marks the bar.
    """

    def __init__(self) -> None:
        self._bar: widgets.IntProgress | None = None
        self._handle: DisplayHandle | None = None

    def __enter__(self) -> CommitProgress:
        return self

    def __exit__(self, _kind: type[BaseException] | None, error: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if error is not None and self._bar is not None:
            self._bar.bar_style, self._bar.description = "danger", "failed"

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < LARGE_COMMIT_BYTES:
                return
            self._bar = widgets.IntProgress(min=0, max=100, description="committing")
            self._handle = display(self._bar, display_id=True)
        percent = done * 100 // max(total, 1)
        if percent != self._bar.value:
            self._bar.value = percent

    def show(self, view: widgets.Widget) -> None:
        """Display ``view`` in place of the bar, or below the cell if no bar was shown."""
        if self._handle is None or self._bar is None:
            display(view)
            return
        self._handle.update(view)
        self._bar.close()


class CIProgress(_Fallback, widgets.VBox):
    """A CI run's progress: a bar over its notebook runs and the notebooks running now.

    Change it only from the kernel's thread (``running`` queues the runner's events for it).
    ``start()`` displays it; ``show(view)`` puts the finished run's view in its place.
    """

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.total = len(jobs)
        self.bar = widgets.IntProgress(min=0, max=max(self.total, 1), description="nbmci ci",
                                       bar_style="info")
        self.label = widgets.Label()
        self._running: dict[tuple[str, str], str] = {}
        self._done = self._cached = 0
        self._note = ""
        self._handle: DisplayHandle | None = None
        super().__init__(children=[self.bar, self.label])
        self._refresh()

    def start(self) -> None:
        self._handle = display(self, display_id=True)

    def apply(self, event: str, job: Job, outcome: NotebookOutcome | None) -> None:
        """One runner event: a notebook ``started``, ``finished``, or answered from the cache."""
        key = (job.ref, job.notebook.name)
        if event == "started":
            baseline = " (production baseline)" if job.auxiliary else ""
            self._running[key] = f"{job.ref} · {job.notebook.name}{baseline}"
        elif event in ("finished", "cached"):
            self._running.pop(key, None)
            self._done += 1
            self._cached += event == "cached"
            if outcome is not None and outcome.status == "error":
                self.bar.bar_style = "danger"
        self._refresh()

    def stopping(self) -> None:
        """The user interrupted: no notebook starts any more; the running ones finish."""
        self.bar.bar_style = "warning"
        self._note = "interrupted: waiting for the running notebooks to end (interrupt again " \
                     "to stop waiting)"
        self._refresh()

    def failed(self) -> None:
        self.bar.bar_style, self.bar.description = "danger", "failed"

    def show(self, view: widgets.Widget) -> None:
        """Display ``view`` in place of the progress (below the cell if never started)."""
        if self._handle is None:
            display(view)
            return
        self._handle.update(view)
        for widget in (self.bar, self.label, self):
            widget.close()

    def _refresh(self) -> None:
        cached = f", {self._cached} from the cache" if self._cached else ""
        running = list(self._running.values())
        now = f" · running {listed(running, 3)}" if running else ""
        text = self._note or f"{self._done} of {self.total} notebook runs done{cached}{now}"
        self.bar.value = min(self._done, self.bar.max)
        self.label.value = text
        self._fallback = (tag("div", f"nbmci ci: {text}", style=FONT), f"nbmci ci: {text}")
