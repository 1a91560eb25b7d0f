"""``[tool.nbmci.ci]`` and ``[tool.nbmci.gates]``, checked before anything runs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmci.ci.gates import Gate, parse_gates
from nbmci.config import Settings
from nbmci.errors import ConfigError

_CI_KEYS = {"notebooks", "timeout", "kernel", "jobs"}
_NOTEBOOK_KEYS = {"path", "parameters"}
RESERVED_PARAMETERS = {"model_ref"}
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class NotebookSpec:
    path: Path  # absolute
    name: str  # as written in the configuration (relative to the project root)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CIConfig:
    notebooks: list[NotebookSpec]
    gates: list[Gate]
    timeout: float = DEFAULT_TIMEOUT
    kernel: str = "python3"
    jobs: int = 1


def check_parameters(parameters: Any, where: str) -> dict[str, Any]:
    """Parameters are plain JSON values (never pickled; BI-07), keyed by identifiers."""
    if not isinstance(parameters, dict):
        raise ConfigError(f"Parameters of {where} must be a table, not {parameters!r:.80}.")
    for key, value in parameters.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"Parameter name {key!r:.80} of {where} is not an identifier.")
        if key in RESERVED_PARAMETERS:
            raise ConfigError(f"Parameter '{key}' of {where} is set by nbmci itself.")
        _check_json(value, f"parameter '{key}' of {where}")
    return dict(parameters)


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"The {where} must be a finite number, not {value!r}.")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The {where} is a {type(value).__name__}, not a JSON value (string, number, "
            "boolean, list or table).", hint="Pass data by path or by model ref instead.",
        ) from exc


def _notebook(entry: Any, root: Path, index: int) -> NotebookSpec:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or "path" not in entry:
        raise ConfigError(f"ci.notebooks[{index}] must be a path or a table with a 'path'.")
    unknown = set(entry) - _NOTEBOOK_KEYS
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in ci.notebooks[{index}].",
                          hint=f"Known keys: {', '.join(sorted(_NOTEBOOK_KEYS))}.")
    name = entry["path"]
    if not isinstance(name, str) or not name.endswith(".ipynb"):
        raise ConfigError(f"ci.notebooks[{index}] path {name!r:.80} is not an .ipynb file.")
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ConfigError(f"ci.notebooks[{index}] {name!r} is outside the project.")
    if not path.is_file():
        raise ConfigError(f"Evaluation notebook {name!r} does not exist (looked at {path}).")
    parameters = check_parameters(entry.get("parameters", {}), f"notebook {name!r}")
    return NotebookSpec(path, name, parameters)


def load_ci_config(settings: Settings) -> CIConfig:
    """The project's CI configuration, or a ConfigError naming what is wrong."""
    ci = settings.extra.get("ci", {})
    if not isinstance(ci, dict):
        raise ConfigError("[tool.nbmci.ci] must be a table.")
    unknown = set(ci) - _CI_KEYS
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in [tool.nbmci.ci].",
                          hint=f"Known keys: {', '.join(sorted(_CI_KEYS))}.")
    entries = ci.get("notebooks", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError("No evaluation notebooks are configured.",
                          hint="Add notebooks = [\"notebooks/evaluate.ipynb\"] under "
                               "[tool.nbmci.ci] in pyproject.toml.")
    notebooks = [_notebook(entry, settings.root, i) for i, entry in enumerate(entries)]
    timeout = ci.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"ci.timeout must be a positive number of seconds, not {timeout!r}.")
    kernel = ci.get("kernel", "python3")
    if not isinstance(kernel, str) or not kernel:
        raise ConfigError(f"ci.kernel must be a kernel name, not {kernel!r}.")
    jobs = ci.get("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"ci.jobs must be a positive integer, not {jobs!r}.")
    return CIConfig(notebooks, parse_gates(settings.extra.get("gates", {})), float(timeout),
                    kernel, jobs)
