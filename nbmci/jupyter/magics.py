"""The ``%mci_*`` line magics: parse the line, call nbmci's Python API, show a view.

Load them with ``%load_ext nbmci``, or for every session with
``c.InteractiveShellApp.extensions = ["nbmci"]`` in an IPython or kernel config file. Each
magic returns its result, so ``v = %mci_commit clf`` keeps the ``Version``. An error is one
line (an IPython ``UsageError``, shown without a traceback) and still fails the cell, so
papermill and nbclient runs stop there.
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

import nbmci
from nbmci import refs
from nbmci.errors import InvalidInputError, NbmciError, UntrustedModelError
from nbmci.jupyter import completion, render, running, widgets
from nbmci.jupyter.output import Output, VersionList
from nbmci.jupyter.status import Status, read_status
from nbmci.results import Diff, Publication, Version

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from nbmci.ci.runner import CIReport

Magic = Callable[..., Any]
DEFAULT_LOG_LIMIT = 50
MAX_JOBS = 64  # as `nbmci ci --jobs`


def register(ipython: Any) -> None:
    """Register the magics, their results' views and tab completion with a running shell."""
    output = Output(ipython)
    output.install()
    ipython.register_magics(MciMagics(ipython, output))
    completion.install(ipython)


def _one_line_errors(magic: Magic) -> Magic:
    """nbmci's own errors become one-line UsageErrors; any other error is a bug and keeps its
    traceback."""

    @functools.wraps(magic)
    def run(self: Any, line: str) -> Any:
        try:
            return magic(self, line)
        except NbmciError as exc:
            hint = f" {_as_magics(exc.hint)}" if exc.hint else ""
            raise UsageError(f"{exc.message}{hint}") from exc

    return run


# CLI commands that core hints name -> the magic that does the same in a notebook (others,
# like `nbmci fsck`, stay: they run as !nbmci fsck)
_MAGIC_FOR = {"ci": "%mci_ci", "log": "%mci_log", "diff": "%mci_diff", "models": "%mci_status",
              "publish": "%mci_publish", "rollback": "%mci_rollback"}
_CLI_COMMAND = re.compile(r"`nbmci ([a-z]+)\b([^`]*)`")


def _as_magics(hint: str) -> str:
    """The hint as a notebook user acts on it: ``%mci_ci clf@3`` for ``nbmci ci clf@3``."""
    return _CLI_COMMAND.sub(
        lambda m: f"{_MAGIC_FOR[m[1]]}{m[2]}" if m[1] in _MAGIC_FOR else m[0], hint)


@magics_class
class MciMagics(Magics):
    """nbmci's magics; see each one's help, e.g. ``%mci_commit?``."""

    def __init__(self, shell: Any, output: Output) -> None:
        super().__init__(shell)
        self._output = output

    @line_magic
    @magic_arguments()
    @argument("model", metavar="MODEL", help="the variable holding the fitted model")
    @argument("--data", metavar="VAR[,VAR...]",
              help="variables holding the training data: DataFrames, Series or numpy arrays")
    @argument("-m", "--message", default="", help="what changed, like a git commit message")
    @argument("--name", help="the model's name; default: MODEL's variable name")
    @argument("--params", nargs="+", metavar="K=V",
              help="hyperparameters to record instead of the model's get_params()")
    @argument("--metrics", nargs="+", metavar="K=V", help="numbers to record, e.g. accuracy=0.97")
    @argument("--example", metavar="VAR",
              help="a variable holding a few input rows (DataFrame, Series, array or list), "
                   "when --data does not hold the training input")
    @argument("--trust", action="store_true",
              help="vouch for a model stored as a pickle, so `nbmci serve` loads it "
                   "without --trust-pickle (recorded with the version)")
    @_one_line_errors
    def mci_commit(self, line: str) -> Version:
        """Commit MODEL, and the data it was trained on, as the next version of the model.

        Shows a card with the new ref, the bytes stored new vs deduplicated, digests, the
        signature, params, lineage (notebook, executed cells, git) and the time taken; a
        progress bar stands in for it while a large commit runs. Returns the Version.
        --params and --metrics values are Python literals (200, 0.5, None, 'gini'); anything
        else is a string.

        Example: %mci_commit clf --data X_train,y_train -m "more trees" --metrics accuracy=0.97
        """
        args = _parse(self.mci_commit, line)
        model = self._variable(args.model, "MODEL")
        data = {v: self._variable(v, "--data") for v in _names(args.data)} if args.data else None
        example = self._variable(args.example, "--example") if args.example else None
        with widgets.CommitProgress() as progress:
            version = nbmci.commit(
                model, data, name=_model_name(args.model, args.name), message=args.message,
                params=_pairs("--params", args.params), metrics=_pairs("--metrics", args.metrics),
                progress=progress, lineage=self._papermill_lineage(), trust=args.trust,
                example=example)
            self._output.show(version, widgets.VersionCard(version), progress.show)
        return version

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", metavar="NAME", help="the model; default: every model")
    @argument("-n", "--limit", type=int, default=DEFAULT_LOG_LIMIT, metavar="N",
              help=f"show the newest N versions (default {DEFAULT_LOG_LIMIT})")
    @argument("--metric", metavar="METRIC", help="the metric to chart first")
    @_one_line_errors
    def mci_log(self, line: str) -> VersionList:
        """Show the versions of model NAME, or of every model, newest first.

        A table of refs, times, messages, aliases, CI status (passed, failed, error, or — when
        CI has not run) and key metrics, committed ones and then those CI recorded (named
        ci:NAME), with a chart of one metric across the versions (pick it in the dropdown, or
        with --metric). Returns the Versions.

        Example: %mci_log clf --metric ci:accuracy
        """
        args = _parse(self.mci_log, line)
        if args.limit < 1:
            raise UsageError(f"-n/--limit must be at least 1, not {args.limit}.")
        found = nbmci.versions(args.name) if args.name else _every_version()
        versions = VersionList(found[:args.limit])
        charted = render.chart_metrics(versions)
        if args.metric is not None and args.metric not in charted:
            known = ", ".join(charted) or "none"
            raise UsageError(f"No version here records metric {args.metric!r:.80}; "
                             f"metrics: {known}.")
        self._output.show(versions, widgets.VersionLog(versions, args.metric))
        return versions

    @line_magic
    @magic_arguments()
    @argument("a", metavar="A", help="the first version: NAME@N, NAME@latest or NAME@ALIAS")
    @argument("b", metavar="B", help="the second version, compared with A")
    @_one_line_errors
    def mci_diff(self, line: str) -> Diff:
        """Compare two versions side by side, differences highlighted.

        Params, metrics, the model, its signature, and each dataset's schema, row count and
        per-column statistics. Returns the Diff.

        Example: %mci_diff clf@1 clf@2
        """
        args = _parse(self.mci_diff, line)
        diff = nbmci.diff(args.a, args.b)
        self._output.show(diff, widgets.DiffView(diff))
        return diff

    @line_magic
    @magic_arguments()
    @argument("ref", metavar="REF", help="the version: NAME@N, NAME@latest or NAME@ALIAS")
    @argument("--as", dest="variable", metavar="VAR",
              help="the variable to restore the model into; default: the model's name")
    @argument("--data", action="store_true",
              help="also restore the committed data, each into a variable of its own name")
    @argument("--trust", action="store_true",
              help="allow a pickled model, whose loading can run code from the registry")
    @_one_line_errors
    def mci_checkout(self, line: str) -> Version:
        """Restore a version's model (and with --data, its data) into the notebook.

        Pickled models run code when loaded, so they are refused unless you pass --trust; the
        opt-in is recorded in the registry's event log. Returns the Version.

        Example: %mci_checkout clf@3 --as clf_v3 --data
        """
        args = _parse(self.mci_checkout, line)
        if args.variable is not None and not _is_identifier(args.variable):
            raise UsageError(f"--as takes a variable name, like clf_v3; "
                             f"got {args.variable!r:.80}.")
        version = nbmci.show(args.ref)
        variable = args.variable or _variable_for(version.name)
        keys = _data_variables(version, variable) if args.data else []
        model = _load(version, args.trust)
        data = nbmci.load_data(version.ref) if keys else {}
        self._shell.push({variable: model, **data})
        self._output.show(version, widgets.CheckoutCard(version, variable, keys))
        return version

    @line_magic
    @magic_arguments()
    @_one_line_errors
    def mci_status(self, line: str) -> Status:
        """Show where the registry is, the models, production, and what awaits CI.

        Lists, per model, the versions committed after its production version (all of them
        when nothing is in production); each production version with its CI result; and the
        versions with no CI result yet, which %mci_ci runs by default. Returns the Status.

        Example: %mci_status
        """
        _parse(self.mci_status, line)
        status = read_status()
        self._output.show(status, widgets.StatusView(status))
        return status

    @line_magic
    @magic_arguments()
    @argument("refs", nargs="*", metavar="REF",
              help="the versions to evaluate: NAME@N, NAME@latest or NAME@ALIAS; default: "
                   "every version with no CI result yet")
    @argument("-j", "--jobs", type=int, metavar="N",
              help="notebooks to run at once (default: ci.jobs in pyproject.toml, else 1)")
    @_one_line_errors
    def mci_ci(self, line: str) -> CIReport:
        """Run the evaluation notebooks against versions, check the gates, record the results.

        Uses [tool.nbmci.ci] and [tool.nbmci.gates] of the project's pyproject.toml, as
        `nbmci ci` does. A progress bar shows the notebook runs; then a table shows each
        version's status (passed, failed or error), the metrics the notebooks recorded, each
        gate's verdict or the error, the time taken, and whether an identical earlier run was
        reused. The results go to the registry (see %mci_log); a version that passed can be
        published with %mci_publish. Returns the CIReport (report.ok: every version passed).

        Example: %mci_ci clf@latest -j 2
        """
        args = _parse(self.mci_ci, line)
        if args.jobs is not None and not 1 <= args.jobs <= MAX_JOBS:
            raise UsageError(f"-j/--jobs must be between 1 and {MAX_JOBS}, not {args.jobs}.")
        for ref in args.refs:
            refs.Ref.parse(ref)  # a malformed ref is named before the configuration is read
        report, where = running.run_ci(nbmci.project(), args.refs, args.jobs)
        self._output.show(report, widgets.CIReportView(report), where or display)
        return report

    @line_magic
    @magic_arguments()
    @argument("ref", metavar="REF", help="the version: NAME@N, NAME@latest or NAME@ALIAS")
    @argument("--force", action="store_true",
              help="publish even though CI has not passed (the override is recorded)")
    @_one_line_errors
    def mci_publish(self, line: str) -> Publication:
        """Point the model's production alias at REF; it must have passed CI (%mci_ci).

        Shows where production points now and where it pointed before. Returns the
        Publication; %mci_rollback NAME undoes it.

        Example: %mci_publish clf@3
        """
        args = _parse(self.mci_publish, line)
        publication = nbmci.publish(args.ref, force=args.force)
        self._output.show(publication, widgets.PublicationView(publication))
        return publication

    @line_magic
    @magic_arguments()
    @argument("name", metavar="NAME", help="the model")
    @_one_line_errors
    def mci_rollback(self, line: str) -> Publication:
        """Move model NAME's production alias back to the version it pointed at before.

        Returns the Publication.

        Example: %mci_rollback clf
        """
        args = _parse(self.mci_rollback, line)
        publication = nbmci.rollback(args.name)
        self._output.show(publication, widgets.PublicationView(publication))
        return publication

    # -- the notebook's namespace ---------------------------------------------------------

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None  # register_magics gave this instance its shell
        return self.shell

    def _variable(self, variable: str, what: str) -> Any:
        if not _is_identifier(variable):
            raise UsageError(f"{variable!r:.80} is not a variable name: {what} takes the name "
                             "of a variable in the notebook, like clf.")
        if variable not in self._shell.user_ns:
            raise UsageError(f"There is no variable `{variable}` in the notebook: "
                             "run the cell that defines it first.")
        return self._shell.user_ns[variable]

    def _papermill_lineage(self) -> dict[str, str] | None:
        """papermill's injected ``PAPERMILL_INPUT_PATH`` parameter names this notebook more
        surely than the environment: a kernel started from another notebook inherits its
        ``JPY_SESSION_NAME``."""
        path = self._shell.user_ns.get("PAPERMILL_INPUT_PATH")
        return {"notebook": path} if isinstance(path, str) and path else None


# -- parsing -----------------------------------------------------------------------------------


def _parse(magic: Magic, line: str) -> Any:
    """The magic's arguments, split like a shell does (quotes removed, unlike IPython's own
    ``parse_argstring``, which would keep them in ``-m "more trees"``)."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"Cannot read the arguments {line!r:.80}: {exc}.") from exc
    return magic.parser.parse_args(argv)  # type: ignore[attr-defined]


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _names(spec: str) -> list[str]:
    names = [n.strip() for n in spec.split(",")]
    if "" in names:
        raise UsageError(f"--data takes VAR[,VAR...], like X_train,y_train; got {spec!r:.80}.")
    if len(set(names)) != len(names):
        raise UsageError(f"--data names a variable twice: {spec!r:.80}.")
    return names


def _pairs(option: str, items: list[str] | None) -> dict[str, Any] | None:
    """``["n_estimators=200", "criterion=gini"]`` -> ``{"n_estimators": 200, ...}``."""
    if items is None:
        return None
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes KEY=VALUE pairs, like alpha=0.5; got {item!r:.80}.")
        if key in pairs:
            raise UsageError(f"{option} gives {key!r:.80} twice.")
        pairs[key] = _literal(raw)
    return pairs


def _literal(raw: str) -> Any:
    """A Python literal (200, 0.5, None, 'gini'); anything else, like gini, as the string."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return raw


def _model_name(variable: str, name: str | None) -> str:
    """``--name``, else the variable's name, lower-cased with '-' for '_' where the name rule
    needs it (as ``nbmci.commit`` does for the variable it is passed)."""
    if name is not None:
        return name
    try:
        return refs.name_for_variable(variable)
    except InvalidInputError:
        raise UsageError(f"The variable name {variable!r} is not a valid model name: "
                         "give one with --name, like --name my-model.") from None


# -- reads -------------------------------------------------------------------------------------


def _every_version() -> list[Version]:
    versions = [v for m in nbmci.models() for v in nbmci.versions(m.name)]
    return sorted(versions, key=lambda v: v.created_at, reverse=True)


def _variable_for(name: str) -> str:
    """The variable a checkout restores model ``name`` into when no --as is given."""
    variable = name.replace("-", "_").replace(".", "_")
    if not _is_identifier(variable):
        raise UsageError(f"Model {name!r} cannot be a variable name: give one with --as VAR.")
    return variable


def _data_variables(version: Version, variable: str) -> list[str]:
    """The data keys of ``version``, checked as variable names before anything is loaded."""
    for key in version.data:
        if not _is_identifier(key):
            raise UsageError(f"Data {key!r} of {version.ref} cannot be restored as a variable: "
                             f"use frames = nbmci.load_data('{version.ref}').")
        if key == variable:
            raise UsageError(f"Data {key!r} of {version.ref} would take the model's variable: "
                             "give the model another with --as VAR.")
    return list(version.data)


def _load(version: Version, trust: bool) -> Any:
    try:
        return nbmci.load(version.ref, trust=trust)
    except UntrustedModelError as exc:
        if trust or version.model.trusted:
            raise
        raise UsageError(f"{exc.message} Restore it only if you trust its author: "
                         f"%mci_checkout {version.ref} --trust.") from exc

