"""What each view shows: result objects of the Python API turned into ``markup.Table``s.

Pure functions, no IPython and no widgets: ``widgets`` wraps these tables in ipywidgets and
gives every view its HTML and text fallbacks from the same tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nbmci.digest import short_digest
from nbmci.jupyter.markup import (
    Cell,
    Html,
    Table,
    badge,
    line_chart,
    lines,
    nbytes,
    seconds,
    short_class,
    value,
    when,
)
from nbmci.jupyter.status import Status
from nbmci.results import Change, CIStatus, DataDiff, Diff, Publication, Version

if TYPE_CHECKING:  # the CI engine is imported only when %mci_ci runs
    from nbmci.ci.runner import CIReport, VersionOutcome

MAX_ROWS = 20  # rows of params, signature entries and statistics shown before "… N more"
LOG_METRICS = 5  # metric columns in the log table
LOG_CI_METRICS = 3  # CI metric columns in the log table
CI_METRIC = "ci:"  # "ci:accuracy" names the accuracy CI recorded, apart from a committed one
NO_CI = "—"


def _capped(title: str, rows: list[list[str]], header: Sequence[str] = (),
            marks: Sequence[str] = (), empty: str = "none", note: str = "") -> Table:
    """A table of at most ``MAX_ROWS`` rows; the note says how many more there were."""
    more = len(rows) - MAX_ROWS
    notes = [f"… and {more} more" if more > 0 else "", note]
    return Table(title, header, rows[:MAX_ROWS], marks[:MAX_ROWS], empty=empty,
                 note="; ".join(n for n in notes if n))


# -- one version (the commit card) -----------------------------------------------------------


def version_heading(version: Version) -> str:
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    took = f" in {seconds(version.duration)}" if version.duration is not None else ""
    return f"{version.ref}{aliases} · {short_class(version.model.class_name)}{took}"


def version_tables(version: Version) -> list[Table]:
    """Summary, data, signature, params, metrics and lineage of one version."""
    return [_summary(version), _data(version), _signature(version),
            _capped("Params", [[k, value(v)] for k, v in sorted(version.params.items())]),
            _capped("Metrics", [[k, value(v)] for k, v in sorted(version.metrics.items())]),
            Table("Lineage", (), lineage_facts(version.lineage), empty="not recorded")]


def _summary(version: Version) -> Table:
    model = version.model
    trust = "trusted" if model.trusted else "untrusted: pickle, loads only with trust"
    if not model.trusted and model.vouched:
        trust = f"pickle, vouched for by {model.vouched_by} (served without --trust-pickle)"
    stored = version.stored
    facts = [
        ["message", version.message or "—"],
        ["model", f"{model.class_name} · {model.format} · {trust}"],
        ["model digest", f"{short_digest(model.digest)} ({nbytes(model.size)})"],
        ["stored", f"{nbytes(stored.new_bytes)} new in {stored.new_objects} objects, "
                   f"{nbytes(stored.dedup_bytes)} deduplicated in {stored.dedup_objects}"],
        ["committed", f"{when(version.created_at)} by {version.author}"],
        ["servable", servable_text(version)],
    ]
    return Table("Version", (), facts)


def servable_text(version: Version) -> str:
    """Whether the version can be served, in words, with what to do when it cannot."""
    servability = version.servability
    if servability.status == "servable":
        seconds = f" in {servability.seconds:.1f} s" if servability.seconds else ""
        return f"✓ yes: loads alone and reproduces its outputs (fresh process{seconds})"
    if servability.status == "not servable":
        return f"✗ no: {servability.reason}. {servability.hint or ''}".strip()
    if servability.status == "checking":
        return "checking in a fresh process…"
    return "unknown (committed before servability checks)"


def _data(version: Version) -> Table:
    rows = [[key, d.kind, f"{d.rows:,}", str(len(d.columns)), nbytes(d.nbytes),
             short_digest(d.digest)] for key, d in version.data.items()]
    return Table("Data", ("name", "kind", "rows", "columns", "size", "digest"), rows,
                 empty="no data committed")


def _signature(version: Version) -> Table:
    signature = version.signature
    schema = version.schema
    if schema is not None:  # logical types, missing values, categories
        rows = [["input", name, described] for name, described in schema.describe().items()]
    else:
        rows = [["input", str(i.get("name")), str(i.get("dtype"))]
                for i in signature.get("inputs", [])]
    rows += [["output", str(o.get("name")), str(o.get("dtype"))]
             for o in signature.get("outputs", [])]
    rows += [["method", method, f"{out.get('type')}" + (f" × {out['shape'][0]}"
                                                       if out.get("shape") else "")]
             for method, out in (signature.get("outputs_recorded") or {}).items()]
    return _capped("Signature", rows, ("", "name", "type"), empty="unknown")


def lineage_facts(lineage: dict[str, Any]) -> list[list[str]]:
    """The lineage a person wants at a glance; the full record stays in ``version.lineage``."""
    facts = []
    if lineage.get("notebook"):
        facts.append(["notebook", str(lineage["notebook"])])
    elif lineage.get("script"):
        facts.append(["script", str(lineage["script"])])
    cells = lineage.get("cells")
    if isinstance(cells, list) and cells:
        facts.append(["cells", f"{len(cells)} run in this kernel, in order"])
    git = lineage.get("git")
    if isinstance(git, dict) and git.get("commit"):
        dirty = ", uncommitted changes" if git.get("dirty") else ""
        facts.append(["git", f"{str(git['commit'])[:12]} on {git.get('branch') or 'detached'}"
                             f"{dirty}"])
    if lineage.get("python"):
        facts.append(["python", str(lineage["python"])])
    packages = lineage.get("packages")
    if isinstance(packages, dict) and packages:
        facts.append(["packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))])
    return facts


# -- checkout --------------------------------------------------------------------------------


def checkout_tables(version: Version, variable: str, data: Sequence[str]) -> list[Table]:
    rows = [[variable, f"the model, {version.model.class_name}"]]
    rows += [[key, f"{version.data[key].kind}, {version.data[key].rows:,} rows"] for key in data]
    return [Table("Restored into the notebook", ("variable", "holds"), rows)]


# -- log -------------------------------------------------------------------------------------

def ci_badge(ci: CIStatus | None) -> Cell:
    """A version's CI status as a badge; a dash when CI has not run for it."""
    return badge(ci.status) if ci is not None else Cell(NO_CI, Html(NO_CI))


LogColumn = tuple[str, Callable[[Version], str]]
LOG_COLUMNS: list[LogColumn] = [
    ("ref", lambda v: v.ref),
    ("committed", lambda v: when(v.created_at)),
    ("message", lambda v: v.message),
    ("aliases", lambda v: ", ".join(v.aliases)),
    ("model", lambda v: short_class(v.model.class_name)),
    ("CI", lambda v: ci_badge(v.ci)),
]


def log_heading(versions: Sequence[Version]) -> str:
    names = sorted({v.name for v in versions})
    return f"Log of {names[0]}" if len(names) == 1 else f"Log of {len(names)} models"


def numeric_metrics(versions: Sequence[Version]) -> list[str]:
    """Metric names with a number in any of ``versions``, the most widely recorded first."""
    counts: dict[str, int] = {}
    for version in versions:
        for key, item in version.metrics.items():
            if _is_number(item):
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


def ci_metrics(versions: Sequence[Version]) -> list[str]:
    """Metric names with a number in any CI result of ``versions``, as ``ci:NAME``: those a
    gate checks first, then the most widely recorded."""
    counts: dict[str, int] = {}
    gated: set[str] = set()
    for version in versions:
        if version.ci is None:
            continue
        gated.update(str(g.get("metric")) for g in version.ci.gates)
        for key, item in version.ci.metrics.items():
            if _is_number(item):
                counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts, key=lambda k: (k not in gated, -counts[k], k))
    return [CI_METRIC + k for k in ordered]


def chart_metrics(versions: Sequence[Version]) -> list[str]:
    """What ``%mci_log`` can chart: committed metrics, then CI metrics (``ci:NAME``)."""
    return [*numeric_metrics(versions), *ci_metrics(versions)]


def metric_value(version: Version, metric: str) -> Any:
    """The committed metric ``metric``, or for ``ci:NAME`` the one CI recorded (or None)."""
    if metric.startswith(CI_METRIC) and metric not in version.metrics:
        return version.ci.metrics.get(metric[len(CI_METRIC):]) if version.ci else None
    return version.metrics.get(metric)


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float) and not isinstance(item, bool)


def log_table(versions: Sequence[Version]) -> Table:
    """One row per version, newest first, with the key metrics, committed then CI, last."""
    metrics = [*numeric_metrics(versions)[:LOG_METRICS], *ci_metrics(versions)[:LOG_CI_METRICS]]
    columns = [*LOG_COLUMNS, *((m, _metric_cell(m)) for m in metrics)]
    rows = [[cell(v) for _, cell in columns] for v in versions]
    return Table("Versions, newest first", [h for h, _ in columns], rows,
                 empty="No versions yet: commit one with %mci_commit MODEL.")


def _metric_cell(name: str) -> Callable[[Version], str]:
    def cell(version: Version) -> str:
        found = metric_value(version, name)
        return "" if found is None else value(found)

    return cell


def metric_chart(versions: Sequence[Version], metric: str) -> Html:
    """``metric`` across ``versions``, oldest to newest, each point labelled with its ref."""
    points = [(v.ref, float(metric_value(v, metric))) for v in reversed(versions)
              if _is_number(metric_value(v, metric))]
    return line_chart(metric, points)


# -- diff ------------------------------------------------------------------------------------


def diff_heading(diff: Diff) -> str:
    verdict = "" if diff.changed else " · no differences"
    return f"{diff.a.ref} → {diff.b.ref}{verdict}"


def diff_tables(diff: Diff) -> list[Table]:
    """Model, params, metrics, signature, then each dataset, A and B side by side."""
    return [_changes("Model", _short_digests(diff.model), str), _changes("Params", diff.params),
            _metric_changes(diff.metrics), _changes("Signature", diff.signature, str),
            *(_data_changes(d) for d in diff.data)]


def _title(title: str, changes: Sequence[Change]) -> str:
    changed = sum(c.status != "same" for c in changes)
    return f"{title} ({changed} of {len(changes)} changed)" if changes else title


def _changes(title: str, changes: Sequence[Change], show: Callable[[Any], str] = value) -> Table:
    """Changed entries first, so that capping a long section never hides a difference."""
    ordered = sorted(changes, key=lambda c: c.status == "same")
    rows = [[c.key, _side(c.a, c.status == "added", show), _side(c.b, c.status == "removed",
                                                                 show)] for c in ordered]
    return _capped(_title(title, changes), rows, ("", "A", "B"), [c.status for c in ordered])


def _side(item: Any, absent: bool, show: Callable[[Any], str] = value) -> str:
    return "—" if absent else show(item)


def _short_digests(changes: Sequence[Change]) -> list[Change]:
    return [replace(c, a=c.a and short_digest(c.a), b=c.b and short_digest(c.b))
            if c.key == "digest" else c for c in changes]


def _metric_changes(changes: Sequence[Change]) -> Table:
    ordered = sorted(changes, key=lambda c: c.status == "same")
    rows = [[c.key, _side(c.a, c.status == "added"), _side(c.b, c.status == "removed"),
             _delta(c)] for c in ordered]
    return _capped(_title("Metrics", changes), rows, ("", "A", "B", "B − A"),
                   [c.status for c in ordered])


def _delta(change: Change) -> str:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool)
                  for x in (change.a, change.b))
    return f"{change.b - change.a:+.6g}" if numbers and change.status == "changed" else ""


def _data_changes(data: DataDiff) -> Table:
    """Rows, then dtype changes, then the per-column statistics that changed."""
    rows_a, rows_b = data.rows
    rows = [["rows", _count(rows_a), _count(rows_b)]]
    marks = [data.status if data.status in ("added", "removed")
             else "changed" if rows_a != rows_b else "same"]
    changed = [(f"{c.key} dtype", c) for c in data.columns if c.status != "same"]
    changed += [(f"{column} {s.key}", s) for column, stats in data.stats.items()
                for s in stats if s.status != "same"]
    for label, change in changed:
        rows.append([label, _side(change.a, change.status == "added"),
                     _side(change.b, change.status == "removed")])
        marks.append(change.status)
    same = sum(s.status == "same" for stats in data.stats.values() for s in stats)
    return _capped(f"Data {data.key} ({data.status})", rows, ("", "A", "B"), marks,
                   note=f"{same} statistics unchanged" if same else "")


def _count(rows: int | None) -> str:
    return "—" if rows is None else f"{rows:,}"


# -- status ----------------------------------------------------------------------------------


def status_tables(status: Status) -> list[Table]:
    """Where the registry is, each model, the production versions and what awaits CI."""
    where = [["project", status.root], ["store", status.store], ["registry", status.registry]]
    rows = [[m.name, str(m.versions), _ref(m.name, m.latest),
             _ref(m.name, status.production(m)), _span(status.newer_than_production(m)),
             ", ".join(f"{a}→{n}" for a, n in sorted(m.aliases.items()))]
            for m in status.models]
    header = ("model", "versions", "latest", "production", "newer than production", "aliases")
    return [Table("Registry", (), where),
            Table("Models", header, rows, empty="No models yet: commit one with %mci_commit."),
            _production(status.production_versions), _awaiting(status)]


def _ref(name: str, number: int | None) -> str:
    return f"{name}@{number}" if number is not None else "—"


def _span(refs: Sequence[str]) -> str:
    if not refs:
        return "—"
    return refs[0] if len(refs) == 1 else f"{len(refs)}: {refs[0]} … {refs[-1]}"


def _production(versions: Sequence[Version]) -> Table:
    rows = [[v.name, v.ref, ci_badge(v.ci), _numbers(v.ci.metrics if v.ci else {}), v.message]
            for v in versions]
    return Table("Production", ("model", "version", "CI", "CI metrics", "message"), rows,
                 empty="Nothing is in production yet: publish a version that passed CI with "
                       "%mci_publish NAME@N.")


def _awaiting(status: Status) -> Table:
    """One row per model with versions that have no CI result."""
    rows = [[m.name, str(len(refs)), _span(refs)] for m in status.models
            if (refs := status.awaiting(m))]
    count = len(status.awaiting_ci)
    note = (f"%mci_ci runs the evaluation notebooks against {'it' if count == 1 else 'them'}"
            if count else "")
    return _capped(f"Awaiting CI ({count} version{'' if count == 1 else 's'})", rows,
                   ("model", "versions", "refs"), note=note,
                   empty="Nothing awaits CI: every version has a CI result.")


def _numbers(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={value(v)}" for k, v in sorted(metrics.items()))


# -- CI ----------------------------------------------------------------------------------------


def ci_heading(report: CIReport) -> str:
    if not report.outcomes:
        return "nbmci ci · nothing to evaluate"
    passed = sum(o.status == "passed" for o in report.outcomes)
    return (f"nbmci ci · {passed} of {len(report.outcomes)} versions passed in "
            f"{seconds(report.duration)}")


def ci_tables(report: CIReport) -> list[Table]:
    """One row per evaluated version: status, CI metrics, gates (or errors), time, cache."""
    rows = [[o.ref, badge(o.status), _numbers(o.metrics), lines(_notes(o)),
             seconds(o.duration), _cached(o)] for o in report.outcomes]
    return [Table("Versions", ("version", "status", "metrics", "gates / errors", "time",
                               "cached"), rows,
                  empty="Nothing to evaluate: every version has a CI result. Name versions to "
                        "re-run them, e.g. %mci_ci NAME@N.")]


_GATE_MARKS = {"passed": "✓", "failed": "✗", "skipped": "–"}


def _notes(outcome: VersionOutcome) -> list[str]:
    """Why each notebook that ended in an error did (first: the gates after an error mostly
    say a metric is missing), then each gate with its verdict, naming the production version
    a relative gate compared with."""
    notes = []
    for notebook in outcome.notebooks:
        if notebook.status == "error":
            error = notebook.error or {}
            hint = f" {error['hint']}" if error.get("hint") else ""
            notes.append(f"{notebook.notebook}: {error.get('reason', 'error')}{hint}")
    for gate in outcome.gates:
        compared = "production" in gate.expression and gate.threshold is not None
        against = f" (vs {outcome.baseline})" if compared and outcome.baseline else ""
        notes.append(f"{_GATE_MARKS.get(gate.status, '?')} {gate.metric} {gate.expression}: "
                     f"{gate.detail}{against}")
    return notes


def _cached(outcome: VersionOutcome) -> str:
    cached = sum(n.cached for n in outcome.notebooks)
    if not cached:
        return "no"
    return "yes" if cached == len(outcome.notebooks) else f"{cached} of {len(outcome.notebooks)}"


# -- publish and rollback ----------------------------------------------------------------------


def publication_line(publication: Publication) -> str:
    """``clf@production → clf@2 (was clf@1)``, saying when CI was overridden or rolled back."""
    moved = f"{publication.name}@{publication.alias} → {publication.ref}"
    before = f"{publication.name}@{publication.previous}" if publication.previous else None
    if publication.rolled_back:
        return f"{moved} (rolled back from {before})"
    was = f" (was {before})" if before else ""
    forced = " · forced: it had not passed CI; the override is recorded" if publication.forced \
        else ""
    return f"{moved}{was}{forced}"
