"""Run one evaluation notebook with papermill on a kernel that is already up.

Every way a run can go wrong ends as an error with a reason, never as a pass: an exception in
a cell (named, with its index), a notebook without a ``parameters`` cell, a kernel that dies,
and a run over its time limit. papermill runs on its own thread while this one watches the
kernel process and the clock, so a dead or hung kernel cannot hang CI (papermill #125): the
run is given up, and the notebook saved so far gets a failure marker.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmci.ci.config import NotebookSpec

logger = logging.getLogger(__name__)
_POLL = 0.25  # seconds between looks at the kernel process
_SETTLE = 5.0  # seconds papermill gets to notice a dead kernel and save what ran


@dataclass(frozen=True)
class Executed:
    cells: list[Any]
    notebook_bytes: bytes | None  # the executed notebook, partial outputs included
    error: dict[str, Any] | None


def has_parameters_cell(notebook: Any) -> bool:
    return any("parameters" in (cell.get("metadata", {}).get("tags") or [])
               for cell in notebook.cells)


def execute_notebook(spec: NotebookSpec, model_ref: str, manager: Any,
                     timeout: float, language: str | None = None) -> Executed:
    """Run ``spec`` against ``model_ref`` on the started kernel of ``manager``. ``language``
    (the kernel's) is what papermill writes the parameters in: notebooks need carry no
    kernelspec or language_info of their own."""
    import nbformat

    source = nbformat.read(spec.path, as_version=4)
    if not has_parameters_cell(source):
        return Executed([], None, {
            "reason": f"{spec.name} has no cell tagged 'parameters', so nbmci cannot tell it "
                      "which version to evaluate",
            "hint": "Tag the cell that defines model_ref = ... with 'parameters'."})
    with tempfile.TemporaryDirectory(prefix="nbmci-ci-") as scratch:
        output = Path(scratch) / spec.path.name
        error = _watched(lambda: _papermill(spec, model_ref, manager, timeout, output,
                                            language),
                         manager, timeout)
        executed = nbformat.read(output, as_version=4) if output.exists() else None
    if error is not None and "cell_index" in error:
        error = _source_cell(error, source)
    if executed is None:
        return Executed([], None, error)
    if error is not None:
        executed.cells.append(nbformat.v4.new_markdown_cell(
            f"**nbmci CI: this run ended with an error:** {error['reason']}",
            metadata={"tags": ["nbmci-error"]}))
    return Executed(list(executed.cells), nbformat.writes(executed).encode(), error)


def _source_cell(error: dict[str, Any], source: Any) -> dict[str, Any]:
    """Cell numbers as in the user's notebook: papermill inserts one cell after the
    parameters cell, so later cells move down by one in the executed copy."""
    parameters = next(i for i, c in enumerate(source.cells)
                      if "parameters" in (c.get("metadata", {}).get("tags") or []))
    index = error["cell_index"]
    if index > parameters + 1:
        index -= 1
    reason = error["reason"]
    if reason.startswith(f"cell {error['cell_index']} "):
        reason = f"cell {index} " + reason[len(f"cell {error['cell_index']} "):]
    return {**error, "cell_index": index, "reason": reason}


def _watched(run: Any, manager: Any, timeout: float) -> dict[str, Any] | None:
    """Run ``run`` on a thread; return its error, or why it was given up."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["error"] = run()
        except BaseException as exc:  # reported below, never lost on this thread
            box["error"] = {"reason": f"{type(exc).__name__}: {exc}", "ename": type(exc).__name__}
        finally:
            done.set()

    threading.Thread(target=target, name="nbmci-papermill", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not done.wait(_POLL):
        if not _alive(manager):
            done.wait(_SETTLE)
            return {"reason": "the kernel died", "ename": "DeadKernelError",
                    **_cell_of(box.get("error"))}
        if time.monotonic() > deadline:
            _stop(manager)
            done.wait(_SETTLE)
            return {"reason": f"timed out after {timeout:g} s; the kernel was stopped",
                    "ename": "Timeout", **_cell_of(box.get("error"))}
    error: dict[str, Any] | None = box.get("error")
    if error is not None and error.get("ename") == "DeadKernelError":
        error["reason"] = "the kernel died"
    return error


def _cell_of(error: dict[str, Any] | None) -> dict[str, Any]:
    return {"cell_index": error["cell_index"]} if error and "cell_index" in error else {}


def _alive(manager: Any) -> bool:
    provisioner = getattr(manager, "provisioner", None)
    if provisioner is None:  # shut down: a started kernel always has one
        return False
    if not hasattr(provisioner, "process"):  # not a local process: nothing to look at
        return True
    process = provisioner.process  # a local provisioner forgets its process once gone
    return process is not None and process.poll() is None


def _stop(manager: Any) -> None:
    logger.warning("notebook over its time limit: stopping the kernel")
    process = getattr(getattr(manager, "provisioner", None), "process", None)
    try:
        if process is not None:
            process.kill()
        else:
            manager.shutdown_kernel(now=True)
    except Exception as exc:
        logger.debug("kernel kill: %s", exc)


def _papermill(spec: NotebookSpec, model_ref: str, manager: Any, timeout: float,
               output: Path, language: str | None) -> dict[str, Any] | None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(spec.path), str(output), parameters={"model_ref": model_ref, **spec.parameters},
            kernel_name=manager.kernel_name, language=language, km=manager, progress_bar=False,
            request_save_on_cell_execute=True, execution_timeout=timeout, log_output=False)
    except PapermillExecutionError as exc:
        return {"reason": f"cell {exc.cell_index} raised {exc.ename}: {exc.evalue}",
                "cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue}
    except Exception as exc:  # dead kernel, cell timeout, broken notebook: all are errors
        return {"reason": f"{type(exc).__name__}: {exc}", "ename": type(exc).__name__}
    return None
