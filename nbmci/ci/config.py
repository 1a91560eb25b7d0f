"""``[tool.nbmci.ci]``, ``[tool.nbmci.gates]`` and ``[tool.nbmci.ci.models.NAME]``, checked
before anything runs.

The project-wide settings apply to every model; a model's own table overrides them key by
key (``notebooks``, ``gates``, ``kernel``, ``parameters``, ``timeout``): a key it sets replaces
the project's value, a key it leaves out falls back to it. Parameters of one notebook entry
are added over the model's (or project's) ``parameters``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmci.ci.gates import Gate, parse_gates
from nbmci.ci.kernels import Kernel, find_kernel
from nbmci.config import Settings
from nbmci.errors import ConfigError
from nbmci.refs import is_valid_name

_MODEL_KEYS = {"notebooks", "gates", "kernel", "parameters", "timeout"}
_CI_KEYS = {"notebooks", "timeout", "kernel", "jobs", "parameters", "models"}
_NOTEBOOK_KEYS = {"path", "parameters"}
RESERVED_PARAMETERS = {"model_ref"}
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class NotebookSpec:
    path: Path  # absolute
    name: str  # as written in the configuration (relative to the project root)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCI:
    """What CI runs for one model: its notebooks (parameters resolved), gates, kernel and
    time limit per notebook."""

    notebooks: list[NotebookSpec]
    gates: list[Gate]
    kernel: Kernel
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class CIConfig:
    """The project-wide CI settings (``default``) and each configured model's own."""

    default: ModelCI
    models: dict[str, ModelCI] = field(default_factory=dict)
    jobs: int = 1

    def for_model(self, name: str) -> ModelCI:
        """The settings CI uses for model ``name``; a ConfigError if it has no notebooks."""
        chosen = self.models.get(name, self.default)
        if not chosen.notebooks:
            raise ConfigError(f"No evaluation notebooks are configured for model '{name}'.",
                              hint=f"Add notebooks = [...] under [tool.nbmci.ci.models.{name}] "
                                   "or [tool.nbmci.ci] in pyproject.toml.")
        return chosen

    @property
    def notebooks(self) -> list[NotebookSpec]:
        """Every configured notebook spec, the project's then each model's."""
        return [*self.default.notebooks,
                *(spec for model in self.models.values() for spec in model.notebooks)]


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


def _notebook(entry: Any, root: Path, where: str, common: dict[str, Any]) -> NotebookSpec:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or "path" not in entry:
        raise ConfigError(f"{where} must be a path or a table with a 'path'.")
    unknown = set(entry) - _NOTEBOOK_KEYS
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in {where}.",
                          hint=f"Known keys: {', '.join(sorted(_NOTEBOOK_KEYS))}.")
    name = entry["path"]
    if not isinstance(name, str) or not name.endswith(".ipynb"):
        raise ConfigError(f"{where} path {name!r:.80} is not an .ipynb file.")
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ConfigError(f"{where} {name!r} is outside the project.")
    if not path.is_file():
        raise ConfigError(f"Evaluation notebook {name!r} does not exist (looked at {path}).")
    parameters = check_parameters(entry.get("parameters", {}), f"notebook {name!r}")
    return NotebookSpec(path, name, {**common, **parameters})


def _unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in {where}.",
                          hint=f"Known keys: {', '.join(sorted(known))}.")


def _model_ci(table: dict[str, Any], base: dict[str, Any], settings: Settings, prefix: str,
              section: str, kernel: str | None) -> ModelCI:
    """``table``'s keys over ``base``'s (both raw TOML), checked; ``prefix`` names the keys
    in messages (``ci`` or ``ci.models.NAME``), ``section`` the table."""
    merged = {**base, **table}
    parameters = check_parameters(merged.get("parameters", {}), section)
    entries = merged.get("notebooks", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{prefix}.notebooks must be a list of notebook paths, not "
                          f"{entries!r:.80}.")
    notebooks = [_notebook(entry, settings.root, f"{prefix}.notebooks[{i}]", parameters)
                 for i, entry in enumerate(entries)]
    gates = merged.get("gates", {})
    if not isinstance(gates, dict):
        raise ConfigError(f"{prefix}.gates must be a table of metric = \"expression\", not "
                          f"{gates!r:.80}.")
    timeout = merged.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{prefix}.timeout must be a positive number of seconds, not "
                          f"{timeout!r}.")
    name = merged.get("kernel")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"{prefix}.kernel must be a kernel name, not {name!r}.")
    chosen = find_kernel(kernel, "--kernel") if kernel else find_kernel(
        name, f"kernel in [tool.nbmci.{prefix}]" if "kernel" in table else
        "kernel in [tool.nbmci.ci]")
    return ModelCI(notebooks, parse_gates(gates), chosen, float(timeout))


def load_ci_config(settings: Settings, *, kernel: str | None = None) -> CIConfig:
    """The project's CI configuration, or a ConfigError naming what is wrong.

    ``kernel``: a kernel to run every notebook on instead of the configured ones
    (``nbmci ci --kernel``).
    """
    ci = settings.extra.get("ci", {})
    if not isinstance(ci, dict):
        raise ConfigError("[tool.nbmci.ci] must be a table.")
    _unknown(ci, _CI_KEYS, "[tool.nbmci.ci]")
    models = ci.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"ci.models must be a table of [tool.nbmci.ci.models.NAME] tables, "
                          f"not {models!r:.80}.")
    entries = ci.get("notebooks", [])
    if not models and (not isinstance(entries, list) or not entries):
        raise ConfigError("No evaluation notebooks are configured.",
                          hint="Add notebooks = [\"notebooks/evaluate.ipynb\"] under "
                               "[tool.nbmci.ci] in pyproject.toml.")
    base = {k: v for k, v in ci.items() if k in _MODEL_KEYS}
    base["gates"] = settings.extra.get("gates", {})
    if not isinstance(base["gates"], dict):
        raise ConfigError("[tool.nbmci.gates] must be a table of metric = \"expression\".")
    default = _model_ci({}, base, settings, "ci", "[tool.nbmci.ci]", kernel)
    per_model = {}
    for name, table in models.items():
        section = f"[tool.nbmci.ci.models.{name}]"
        if not is_valid_name(name):
            raise ConfigError(f"{section}: {name!r} is not a model name.",
                              hint="Model names are lowercase letters, digits, '.', '_' and "
                                   "'-', starting with a letter or digit.")
        if not isinstance(table, dict):
            raise ConfigError(f"{section} must be a table, not {table!r:.80}.")
        _unknown(table, _MODEL_KEYS, section)
        per_model[name] = _model_ci(table, base, settings, f"ci.models.{name}", section,
                                    kernel)
    jobs = ci.get("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"ci.jobs must be a positive integer, not {jobs!r}.")
    return CIConfig(default, per_model, jobs)
