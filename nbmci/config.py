"""Settings: one frozen dataclass, from ``[tool.nbmci]`` / ``nbmci.toml`` / ``NBMCI_*``.

With no configuration at all, the registry and store live in ``.nbmci/`` at the project root,
found from the working directory upward.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbmci.errors import ConfigError

STATE_DIR = ".nbmci"
_PROJECT_MARKERS = ("pyproject.toml", "nbmci.toml", ".git")
DEFAULT_GC_GRACE = 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    """Where a project keeps its registry and objects, and how it writes them."""

    root: Path
    store_url: str
    registry_url: str
    gc_grace: float = DEFAULT_GC_GRACE
    durable: bool = True  # fsync objects and directories before the metadata commit
    chunk_bytes: int = 8 << 20  # largest average row chunk (all columns); smaller data: ~128
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# key -> (type, Settings field)
_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "store": (str, "store_url"),
    "registry": (str, "registry_url"),
    "gc_grace": ((int, float), "gc_grace"),
    "durable": (bool, "durable"),
    "chunk_bytes": (int, "chunk_bytes"),
}
# Sections owned by other parts of nbmci (CI, gates, serving); kept for them unparsed here.
_SECTIONS = ("ci", "gates", "serve")
_ENV = {
    "NBMCI_STORE_URL": "store",
    "NBMCI_REGISTRY_URL": "registry",
    "NBMCI_GC_GRACE": "gc_grace",
    "NBMCI_DURABLE": "durable",
}


def find_root(start: Path | str | None = None) -> Path:
    """The project root: the nearest ancestor holding ``.nbmci/``, else one holding a
    ``pyproject.toml``, ``nbmci.toml`` or ``.git``, else ``start`` itself."""
    here = Path(start or os.getcwd()).resolve()
    chain = [here, *here.parents]
    for directory in chain:
        if (directory / STATE_DIR).is_dir():
            return directory
    for directory in chain:
        if any((directory / marker).exists() for marker in _PROJECT_MARKERS):
            return directory
    return here


def _read_file_config(root: Path) -> tuple[dict[str, Any], str]:
    for filename, section in (("nbmci.toml", None), ("pyproject.toml", ("tool", "nbmci"))):
        path = root / filename
        if not path.is_file():
            continue
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc
        for key in section or ():
            data = data.get(key, {})
            if not isinstance(data, dict):
                raise ConfigError(f"[{'.'.join(section or ())}] in {path} must be a table.")
        if data or filename == "nbmci.toml":
            where = str(path) if section is None else f"[tool.nbmci] in {path}"
            return data, where
    return {}, "defaults"


def _coerce_env(key: str, raw: str) -> Any:
    kind = _KEYS[key][0]
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"Environment variable for '{key}' has value {raw!r}: not a boolean.")
    if kind == (int, float):
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"Config '{key}' has value {raw!r}: not a number.") from exc
    return raw


def load_settings(start: Path | str | None = None) -> Settings:
    """Resolve the project's settings from files and the environment.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.

    Example: ``load_settings().store_url``
    """
    env_root = os.environ.get("NBMCI_ROOT")
    root = Path(env_root).resolve() if env_root else find_root(start)
    values, where = _read_file_config(root)
    for env, key in _ENV.items():
        if env in os.environ:
            values[key] = _coerce_env(key, os.environ[env])
    extra = {}
    fields: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS:
            extra[key] = value
            continue
        if key not in _KEYS:
            known = ", ".join(sorted([*_KEYS, *_SECTIONS]))
            raise ConfigError(f"Unknown key '{key}' in {where}.", hint=f"Known keys: {known}.")
        kind, attr = _KEYS[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"Config '{key}' in {where} has value {value!r} of the wrong type.")
        fields[attr] = value
    state = root / STATE_DIR
    fields.setdefault("store_url", str(state))
    fields.setdefault("registry_url", f"sqlite:///{state / 'registry.db'}")
    if fields.get("chunk_bytes", 1 << 20) < 1 << 16:
        raise ConfigError("Config 'chunk_bytes' must be at least 65536.")
    return Settings(root=root, extra=extra, **fields)
