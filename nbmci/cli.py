"""The ``nbmci`` command: rich tables for people, ``--json`` for scripts.

Errors are one line on stderr: exit 2 for bad usage or input, 1 for every other nbmci error,
70 for a bug (with ``--debug`` for the traceback).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from typing import Any

import click

from nbmci.errors import InvalidInputError, NbmciError

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERNAL = 70


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _api() -> Any:
    from nbmci import api

    return api


def _print_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _short_class(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _escape(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="nbmci")
@click.pass_context
def app(ctx: click.Context, debug: bool) -> None:
    """Model CI/CD that lives in Jupyter: a versioned registry of models and their data."""
    ctx.obj = {"debug": debug}


@app.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
def init(path: str | None) -> None:
    """Create the registry and store (.nbmci/) in PATH (default: here)."""
    project = _api().init(path)
    click.echo(f"Initialized nbmci in {project.settings.state_dir}")


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def models(as_json: bool) -> None:
    """List the models in the registry."""
    found = _api().models()
    if as_json:
        _print_json([m.to_dict() for m in found])
        return
    from rich.table import Table

    table = Table(title="Models", title_justify="left")
    for column in ("name", "versions", "latest", "aliases", "updated"):
        table.add_column(column)
    for m in found:
        aliases = ", ".join(f"{a}→{n}" for a, n in sorted(m.aliases.items()))
        table.add_row(_escape(m.name), str(m.versions), f"{m.name}@{m.latest}" if m.latest else "",
                      _escape(aliases), _when(m.updated_at))
    if not found:
        click.echo("No models yet. Commit one with nbmci.commit(model, data=...).")
        return
    _console().print(table)


@app.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=None,
              help="Show at most this many versions.")
def log(name: str, as_json: bool, limit: int | None) -> None:
    """List the versions of model NAME, newest first."""
    found = _api().versions(name)[:limit]
    if as_json:
        _print_json([v.to_dict() for v in found])
        return
    from rich.table import Table

    table = Table(title=f"Versions of {name}", title_justify="left")
    for column in ("ref", "created", "message", "aliases", "model", "data", "CI", "metrics"):
        table.add_column(column, overflow="fold")
    styles = {"passed": "green", "failed": "red", "error": "red bold"}
    for v in found:
        data = ", ".join(f"{k} {d.rows:,}×{len(d.columns)}" for k, d in v.data.items())
        shown = {**v.metrics, **(v.ci.metrics if v.ci else {})}
        metrics = ", ".join(f"{k}={_fmt(val)}" for k, val in sorted(shown.items()))
        status = v.ci.status if v.ci else "-"
        style = styles.get(status, "dim")
        table.add_row(v.ref, _when(v.created_at), _escape(v.message), ", ".join(v.aliases),
                      _short_class(v.model.class_name), _escape(data),
                      f"[{style}]{status}[/{style}]", _escape(metrics))
    _console().print(table)


def _servable(v: Any) -> str:
    servability = v.servability
    if servability.status == "servable":
        return f"yes (checked at {servability.where} in a fresh process)"
    if servability.status == "not servable":
        return f"NO: {servability.reason}" + (f" {servability.hint}" if servability.hint
                                              else "")
    if servability.status == "checking":
        return "checking in a fresh process…"
    return "unknown (committed before servability checks; `nbmci check REF` checks it)"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def show(ref: str, as_json: bool) -> None:
    """Show one version: model, data, params, metrics, signature and lineage."""
    v = _api().show(ref)
    if as_json:
        _print_json(v.to_dict(full=True))
        return
    from rich.table import Table

    console = _console()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    git = v.lineage.get("git") or {}
    rows = [
        ("ref", v.ref), ("created", f"{_when(v.created_at)} by {v.author}"),
        ("message", v.message), ("aliases", ", ".join(v.aliases) or "-"),
        ("model", f"{v.model.class_name} ({v.model.format}, {_size(v.model.size)}"
                  f"{'' if v.model.trusted else ', untrusted pickle'}"
                  f"{f', vouched for by {v.model.vouched_by}' if v.model.vouched else ''})"),
        ("digest", v.model.digest),
        ("servable", _servable(v)),
        ("stored", f"{_size(v.stored.new_bytes)} new, {_size(v.stored.dedup_bytes)} deduplicated"),
        ("source", v.lineage.get("notebook") or v.lineage.get("script") or "-"),
        ("git", f"{(git.get('commit') or '')[:12]} {git.get('branch') or ''}"
                f"{' (dirty)' if git.get('dirty') else ''}" if git else "-"),
    ]
    for key, value in rows:
        facts.add_row(key, _escape(value))
    console.print(facts)
    for title, mapping in (("params", v.params), ("metrics", v.metrics)):
        if mapping:
            table = Table(title=title, title_justify="left")
            table.add_column("name")
            table.add_column("value", overflow="fold")
            for key, value in sorted(mapping.items()):
                table.add_row(_escape(key), _escape(_fmt(value)))
            console.print(table)
    if v.data:
        table = Table(title="data", title_justify="left")
        for column in ("name", "kind", "rows", "columns", "digest"):
            table.add_column(column, overflow="fold")
        for key, d in v.data.items():
            table.add_row(_escape(key), d.kind, f"{d.rows:,}", str(len(d.columns)), d.digest[:19])
        console.print(table)
    schema = v.schema
    if schema is not None:
        table = Table(title=f"inputs ({schema.kind})", title_justify="left")
        table.add_column("column")
        table.add_column("type", overflow="fold")
        for name, described in list(schema.describe().items())[:50]:
            table.add_row(_escape(name), _escape(described))
        console.print(table)
        if len(schema.columns) > 50:
            console.print(f"[dim]… {len(schema.columns) - 50} more columns[/dim]")
    elif v.signature.get("inputs"):
        inputs = v.signature["inputs"]
        shown = ", ".join(f"{i['name']}:{i['dtype']}" for i in inputs[:12])
        more = f" … (+{len(inputs) - 12})" if len(inputs) > 12 else ""
        console.print(f"[bold]signature[/bold]  {_escape(shown)}{more}")
    outputs = v.signature.get("outputs_recorded") or {}
    if outputs:
        console.print(f"[bold]outputs[/bold]  {_escape(', '.join(outputs))}")


@app.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def diff(a: str, b: str, as_json: bool) -> None:
    """Compare two versions: model, params, metrics, signature and data statistics."""
    result = _api().diff(a, b)
    if as_json:
        _print_json(result.to_dict())
        return
    from rich.table import Table

    console = _console()
    styles = {"added": "green", "removed": "red", "changed": "yellow", "same": "dim"}
    ra, rb = result.a.ref, result.b.ref

    def section(title: str, changes: list[Any], only_changed: bool = False) -> None:
        shown = [c for c in changes if not only_changed or c.status != "same"]
        if not shown:
            return
        table = Table(title=title, title_justify="left")
        for column in ("", ra, rb, ""):
            table.add_column(column, overflow="fold")
        for c in shown:
            style = styles[c.status]
            table.add_row(_escape(c.key), _escape(_fmt(c.a) if c.status != "added" else ""),
                          _escape(_fmt(c.b) if c.status != "removed" else ""),
                          f"[{style}]{c.status}[/{style}]", style=None if c.status != "same"
                          else "dim")
        console.print(table)

    section("model", result.model)
    section("params", result.params, only_changed=True)
    same_params = sum(1 for c in result.params if c.status == "same")
    if same_params:
        console.print(f"[dim]{same_params} params unchanged[/dim]")
    section("metrics", result.metrics)
    section("signature", result.signature, only_changed=True)
    for d in result.data:
        style = styles[d.status]
        rows = " → ".join("-" if r is None else f"{r:,}" for r in d.rows)
        console.print(f"[bold]data {_escape(d.key)}[/bold]: [{style}]{d.status}[/{style}], "
                      f"rows {rows}")
        section(f"{d.key} columns", d.columns, only_changed=True)
        _print_stats_table(console, d)
    if not result.changed:
        console.print("[dim]No differences.[/dim]")


_STAT_COLUMNS = ("count", "nulls", "mean", "std", "min", "max")
_MAX_STAT_ROWS = 25


def _print_stats_table(console: Any, data_diff: Any) -> None:
    """One row per column whose statistics changed, each cell ``a → b`` when it moved."""
    from rich.table import Table

    changed = {c: ch for c, ch in data_diff.stats.items() if any(x.status != "same" for x in ch)}
    if not changed:
        return
    table = Table(title=f"{data_diff.key} statistics that changed", title_justify="left")
    table.add_column("column", overflow="fold")
    for stat in _STAT_COLUMNS:
        table.add_column(stat)
    for column, changes in list(changed.items())[:_MAX_STAT_ROWS]:
        by_stat = {c.key: c for c in changes}
        cells = []
        for stat in _STAT_COLUMNS:
            c = by_stat.get(stat)
            if c is None:
                cells.append("")
            elif c.status == "same":
                cells.append(f"[dim]{_escape(_fmt(c.a))}[/dim]")
            else:
                a = "-" if c.a is None else _fmt(c.a)
                b = "-" if c.b is None else _fmt(c.b)
                cells.append(f"[yellow]{_escape(a)} → {_escape(b)}[/yellow]")
        table.add_row(_escape(column), *cells)
    console.print(table)
    if len(changed) > _MAX_STAT_ROWS:
        console.print(f"[dim]… and {len(changed) - _MAX_STAT_ROWS} more columns; "
                      "see --json[/dim]")


@app.command()
@click.argument("ref")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write into (created; must be empty).")
def checkout(ref: str, out: str) -> None:
    """Write REF's model file, its data as Parquet and version.json into --out."""
    result = _api().checkout(ref, out)
    click.echo(f"Checked out {result.ref} into {result.directory}:")
    for name in result.files:
        click.echo(f"  {name}")


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def fsck(as_json: bool) -> None:
    """Re-hash every object and check every reference; exit 1 on any problem."""
    report = _api().fsck()
    if as_json:
        _print_json(report.to_dict())
    else:
        console = _console()
        console.print(f"{report.objects} objects ({report.referenced} referenced, "
                      f"{report.unreferenced} unreferenced), {report.temporary} temporary files")
        for p in report.problems:
            refs = f" (needed by {', '.join(p.refs)})" if p.refs else ""
            console.print(f"[red]{p.kind}[/red] {_escape(p.subject)}: {_escape(p.detail)}{refs}")
        console.print("[green]ok[/green]" if report.ok else
                      f"[red]{len(report.problems)} problem(s)[/red]")
    if not report.ok:
        sys.exit(EXIT_FAILED)


_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: str) -> float:
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration like 0, 90s, 2h or 14d.")
    return float(match["n"]) * _UNITS[match["unit"]]


@app.command()
@click.option("--grace", default=None, help="Keep unreferenced objects younger than this "
              "(e.g. 0, 30m, 2h, 14d; default: 1d).")
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def gc(grace: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete objects no version needs, and leftovers of interrupted writes."""
    report = _api().gc(_duration(grace) if grace is not None else None, dry_run=dry_run)
    if as_json:
        _print_json(report.to_dict())
        return
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {report.deleted_objects} objects ({_size(report.deleted_bytes)}) and "
               f"{report.deleted_temporary} temporary files; kept {report.kept_young} "
               "recent unreferenced objects.")


@app.command()
@click.argument("refs", nargs=-1)
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=64), default=None,
              help="Notebooks to run at once (default: ci.jobs, else 1).")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--summary", type=click.Path(dir_okay=False),
              help="Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--shard", help="Run slice I of N (e.g. 2/4) for a CI job matrix.")
@click.option("--kernel", metavar="NAME",
              help="Run every notebook on this installed kernel (default: ci.kernel, else "
                   "this Python).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def ci(refs: tuple[str, ...], jobs: int | None, junit: str | None, summary: str | None,
       shard: str | None, kernel: str | None, as_json: bool) -> None:
    """Run the evaluation notebooks against REFS (default: versions with no CI result yet).

    Exits 0 only when every version passed its gates.
    """
    from nbmci.ci import report as reports
    from nbmci.ci.config import load_ci_config
    from nbmci.ci.runner import Runner, parse_shard

    project = _api().project()
    config = load_ci_config(project.settings, kernel=kernel)
    slice_ = parse_shard(shard)
    console = _console(stderr=as_json)
    with _ci_progress(console) as listener, _terminate_as_interrupt():
        runner = Runner(project, config, jobs=jobs, listener=listener)
        result = runner.run(list(refs) or None, slice_)
    if junit:
        reports.write(junit, reports.junit_xml(result))
    if summary:
        reports.write(summary, reports.markdown(result))
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_ci(console, result)
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _terminate_as_interrupt() -> Any:
    """SIGTERM (a CI system cancelling the job) stops ``nbmci ci`` as Ctrl-C does: kernels
    shut down and temporary files removed, instead of dying with orphans left behind."""
    import contextlib
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def handler() -> Any:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    return handler()


def _ci_progress(console: Any) -> Any:
    """A progress bar fed by the runner's events (quiet when nothing runs)."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def bar() -> Any:
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=console, transient=True)
        task = progress.add_task("nbmci ci", total=None)
        counts = {"planned": 0}

        def listener(event: str, job: Any, outcome: Any) -> None:
            if event == "started":
                counts["planned"] += 1
                progress.update(task, total=max(counts["planned"], progress.tasks[0].total or 0),
                                description=f"running {job.ref} {job.notebook.name}")
            elif event in ("finished", "cached"):
                if event == "cached":
                    counts["planned"] += 1
                progress.update(task, advance=1, total=counts["planned"])

        with progress:
            yield listener

    return bar()


def _print_ci(console: Any, result: Any) -> None:
    from rich.table import Table

    styles = {"passed": "green", "failed": "red", "error": "red bold"}
    table = Table(title="nbmci ci", title_justify="left")
    for column in ("version", "status", "metrics", "gates / errors", "time"):
        table.add_column(column, overflow="fold")
    for o in result.outcomes:
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(o.metrics.items()))
        notes = [f"{n.notebook}: {(n.error or {}).get('reason')}" for n in o.notebooks
                 if n.status == "error"]
        marks = {"passed": "✓", "failed": "✗"}
        notes += [f"{marks.get(g.status, '–')} {g.metric} {g.expression}: {g.detail}"
                  for g in o.gates]
        if o.servability.status == "not servable":
            notes.append(f"✗ not servable: {o.servability.reason}")
        cached = " (cached)" if all(n.cached for n in o.notebooks) else ""
        style = styles.get(o.status, "")
        table.add_row(o.ref, f"[{style}]{o.status}[/{style}]", _escape(metrics),
                      _escape("\n".join(notes)), f"{o.duration:.1f}s{cached}")
    if not result.outcomes:
        console.print("Nothing to evaluate: every version has a CI result. "
                      "Name versions to re-run them, e.g. `nbmci ci clf@3`.")
        return
    console.print(table)
    for o in result.outcomes:  # whole, where a table cell would fold them
        for n in o.notebooks:
            if n.status == "error":
                error = n.error or {}
                hint = f" {error['hint']}" if error.get("hint") else ""
                console.print(f"[red]error[/red] {_escape(o.ref)} {_escape(n.notebook)}: "
                              f"{_escape(error.get('reason', 'error'))}{_escape(hint)}",
                              soft_wrap=True)


@app.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Publish even without a passed CI run "
              "(recorded in the event log).")
def publish(ref: str, force: bool) -> None:
    """Point the production alias at REF (it must have passed CI)."""
    result = _api().publish(ref, force=force)
    before = f" (was {result.name}@{result.previous})" if result.previous else ""
    note = " [forced: CI had not passed; recorded]" if result.forced else ""
    click.echo(f"{result.name}@production -> {result.ref}{before}{note}")


@app.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def check(ref: str, as_json: bool) -> None:
    """Check that REF can be served: it loads from the store alone in a fresh process and
    reproduces the outputs recorded on its example rows. Exits 1 if it cannot."""
    v = _api().check(ref)
    if as_json:
        _print_json({"ref": v.ref, **v.servability.to_dict()})
    else:
        click.echo(f"{v.ref}: {_servable(v)}")
    if v.servability.status == "not servable":
        raise SystemExit(1)


@app.command()
@click.argument("name")
def rollback(name: str) -> None:
    """Move NAME's production alias back to the version it pointed at before."""
    result = _api().rollback(name)
    click.echo(f"{result.name}@production -> {result.ref} (rolled back from "
               f"{result.name}@{result.previous})")


@app.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo project (default: a new temporary directory).")
def demo(directory: str | None) -> None:
    """Run the whole journey on scikit-learn's bundled data in a fresh project."""
    from pathlib import Path

    from nbmci.demo import run_demo

    run_demo(Path(directory) if directory else None, _console())


def _register_serve() -> None:
    from nbmci.serve.command import serve

    app.add_command(serve)


_register_serve()


def _fail(message: str, code: int) -> None:
    err = _console(stderr=True)
    err.print(f"[red]error:[/red] {_escape(message)}", soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every error into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app.main(args=args, prog_name="nbmci", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if debug:
            traceback.print_exc()
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message += f" (see `{exc.ctx.command_path} --help`)"
        _fail(message, exc.exit_code)
    except NbmciError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), EXIT_USAGE if isinstance(exc, InvalidInputError) else EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted; nothing half-written was kept", 130)
    except Exception as exc:  # a bug: say so, without a traceback unless asked
        if debug:
            traceback.print_exc()
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it with --debug "
              "output", EXIT_INTERNAL)



if __name__ == "__main__":
    main()
