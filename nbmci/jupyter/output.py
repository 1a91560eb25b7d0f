"""How results reach a cell's output: each result as its view, and only once.

A magic displays its view as soon as it has a result, then returns the result so that
``v = %mci_commit clf`` works. IPython would echo that returned result as ``Out[n]`` under the
view; the printer installed here shows a result's view instead, and nothing for a result that a
magic of the running cell has already shown. So ``nbmci.diff("clf@1", "clf@2")`` at the end of
a cell shows the diff view too, and a later cell holding just ``v`` shows the card again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from IPython.display import display

from nbmci.jupyter import widgets
from nbmci.jupyter.status import Status
from nbmci.results import Diff, Publication, Version

Show = Callable[[Any], None]


class VersionList(list[Version]):
    """Versions as ``%mci_log`` returns them, newest first: a plain list that has a view."""


# result type -> its view
VIEWS: dict[type, Callable[[Any], Any]] = {
    Version: widgets.VersionCard,
    VersionList: widgets.VersionLog,
    Diff: widgets.DiffView,
    Status: widgets.StatusView,
    Publication: widgets.PublicationView,
}
# result types known by module and name, so that loading the extension imports no CI engine
NAMED_VIEWS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("nbmci.ci.runner", "CIReport"): widgets.CIReportView,
}


class Output:
    """The results shown in the running cell, and the printer that keeps them from echoing."""

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._shown: list[object] = []

    def install(self) -> None:
        """Print nbmci's results as their views; replaces a previous install (``%reload_ext``)."""
        printers = self._shell.display_formatter.ipython_display_formatter
        previous = getattr(printers.type_printers.get(Version), "__self__", None)
        if isinstance(previous, Output):
            self._shell.events.unregister("post_run_cell", previous._forget)
        for kind in VIEWS:
            printers.for_type(kind, self._print)
        for module, name in NAMED_VIEWS:
            loaded = sys.modules.get(module)  # once imported, a by-name printer would lose
            if loaded is not None:  # to the one it replaces (``%reload_ext``)
                printers.for_type(getattr(loaded, name), self._print)
            else:
                printers.for_type_by_name(module, name, self._print)
        self._shell.events.register("post_run_cell", self._forget)

    def show(self, result: object, view: Any, where: Show = display) -> None:
        """Display ``view`` of ``result`` (``where`` may put it in place of a progress bar)."""
        where(view)
        self._shown.append(result)

    def _print(self, result: object) -> None:
        if not any(result is shown for shown in self._shown):
            display(view_of(result))

    def _forget(self, _result: object) -> None:
        self._shown.clear()


def view_of(result: object) -> Any:
    """The view of one of nbmci's results."""
    for kind in type(result).__mro__:
        view = VIEWS.get(kind) or NAMED_VIEWS.get((kind.__module__, kind.__qualname__))
        if view is not None:
            return view(result)
    raise TypeError(f"nbmci has no view for {type(result).__name__}")
