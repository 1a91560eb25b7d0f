"""CI reports: JUnit XML for CI systems and a Markdown summary for pull requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from nbmci.ci.runner import CIReport, NotebookOutcome, VersionOutcome

_ICONS = {"passed": "✅", "failed": "❌", "error": "💥"}
_GATE_ICONS = {"passed": "✅", "failed": "❌", "skipped": "–"}


def junit_xml(report: CIReport) -> bytes:
    """One test case per version x notebook, and one per version for its servability; a
    failed gate or a version no server can load is a failure, an exception an error naming
    the cell."""
    cases = [(o, n) for o in report.outcomes for n in o.notebooks]
    suite = ET.Element("testsuite", name="nbmci ci",
                       tests=str(len(cases) + len(report.outcomes)),
                       time=f"{report.duration:.3f}")
    failures = errors = 0
    for outcome in report.outcomes:
        failures += _servability_case(suite, outcome)
    for outcome, notebook in cases:
        case = ET.SubElement(suite, "testcase", classname=outcome.ref, name=notebook.notebook,
                             time=f"{notebook.duration:.3f}")
        if notebook.status == "error":
            errors += 1
            error = notebook.error or {}
            node = ET.SubElement(case, "error", message=str(error.get("reason", "error")),
                                 type=str(error.get("ename", "NotebookError")))
            node.text = _error_text(notebook, outcome)
            continue
        failed = [g for g in outcome.gates if g.status == "failed"
                  and _owner(outcome, g.metric) == notebook.notebook]
        if failed:
            failures += 1
            node = ET.SubElement(case, "failure", type="GateFailed",
                                 message="; ".join(f"{g.metric}: {g.detail}" for g in failed))
            node.text = "\n".join(f"{g.metric} {g.expression}: {g.detail}" for g in failed)
        if notebook.cached:
            ET.SubElement(case, "system-out").text = "result reused from an identical run"
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites", tests=suite.get("tests", "0"), failures=str(failures),
                      errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _servability_case(suite: ET.Element, outcome: VersionOutcome) -> int:
    """The "servable" test case of a version; 1 if it is a failure."""
    servability = outcome.servability
    case = ET.SubElement(suite, "testcase", classname=outcome.ref, name="servable",
                         time=f"{servability.seconds or 0.0:.3f}")
    if servability.status == "not servable":
        node = ET.SubElement(case, "failure", type="NotServable",
                             message=str(servability.reason))
        node.text = "\n".join(t for t in (servability.reason, servability.hint) if t)
        return 1
    if servability.status != "servable":
        ET.SubElement(case, "skipped", message=servability.reason or servability.status)
    return 0


def _owner(outcome: VersionOutcome, metric: str) -> str:
    """The notebook a gate failure is reported on: the one that recorded the metric."""
    for notebook in outcome.notebooks:
        if metric in notebook.records:
            return notebook.notebook
    return outcome.notebooks[0].notebook


def _error_text(notebook: NotebookOutcome, outcome: VersionOutcome) -> str:
    error = notebook.error or {}
    lines = [str(error.get("reason", ""))]
    if error.get("hint"):
        lines.append(str(error["hint"]))
    lines += [f"gate {g.metric} {g.expression}: {g.detail}" for g in outcome.gates]
    return "\n".join(lines)


def markdown(report: CIReport) -> str:
    """A summary table for a pull request comment or $GITHUB_STEP_SUMMARY."""
    passed = sum(o.status == "passed" for o in report.outcomes)
    lines = [f"## nbmci CI: {passed}/{len(report.outcomes)} versions passed", "",
             "| version | status | servable | metrics | errors and gates |",
             "| --- | --- | --- | --- | --- |"]
    for o in report.outcomes:
        metrics = ", ".join(f"{k} = {v:.4g}" for k, v in sorted(o.metrics.items()))
        notes = [f"{_ICONS['error']} {n.notebook}: {(n.error or {}).get('reason', '')}"
                 for n in o.notebooks if n.status == "error"]
        notes += [f"{_GATE_ICONS.get(g.status, '–')} {g.metric} {g.expression} ({g.detail})"
                  for g in o.gates]
        lines.append(f"| `{o.ref}` | {_ICONS.get(o.status, '')} {o.status} | "
                     f"{_md(_servable(o))} | {_md(metrics)} | "
                     f"{'<br>'.join(_md(n) for n in notes) or '-'} |")
    lines += ["", f"_{len(report.outcomes)} versions in {report.duration:.1f} s_", ""]
    return "\n".join(lines)


def _servable(outcome: VersionOutcome) -> str:
    servability = outcome.servability
    if servability.status == "servable":
        return "✅ yes"
    if servability.status == "not servable":
        return f"❌ no: {servability.reason}"
    return f"– {servability.status}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(path: str | Path, data: bytes | str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        target.write_text(data, encoding="utf-8")
    else:
        target.write_bytes(data)
