"""Code a model needs that no package provides: found at commit, stored, importable at load.

A model may hold a function or class from a module beside the notebook (``features.py``, a
``helpers/`` package): a ``FunctionTransformer(func=features.add_ratio)``, a custom
transformer. Such a module is in no environment a server or a CI job installs, so at commit
its source files are stored with the version as one *code bundle* (canonical JSON, like
MLflow's ``code_paths`` but found automatically), and every load imports them from the
bundle: the version's own copy, even if the file beside the notebook changed since.

What is "local": a module whose file lies outside the interpreter's installation (stdlib,
site-packages); nbmci itself never is. Objects defined in the notebook itself (``__main__``)
cannot be stored this way: ``main_objects`` names them so commit can say how to fix it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import pickle
import shutil
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from nbmci.errors import IntegrityError, UnsupportedDataError, listed

FORMAT = "nbmci.code/1"
MAX_BYTES = 4 * 1024 * 1024  # a bundle larger than this is a project, not a helper module
MAX_FILES = 256


def referenced_modules(obj: Any, type_names: Iterable[str]) -> set[str]:
    """Top-level modules ``obj`` needs: those of ``type_names`` (skops' list of the types it
    stored) or, without one, of every class and function a pickle of ``obj`` would name."""
    names = {n.split(".", 1)[0] for n in type_names if "." in n}
    if names:
        return names
    seen: set[str] = set()

    class Scan(pickle.Pickler):
        def reducer_override(self, value: Any) -> Any:
            module = getattr(value, "__module__", None) if isinstance(value, type) or \
                callable(value) else type(value).__module__
            if isinstance(module, str):
                seen.add(module.split(".", 1)[0])
            return NotImplemented

    try:
        Scan(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:  # unpicklable: the serializer will have said so
        return set()
    return seen


def main_objects(obj: Any, type_names: Iterable[str]) -> list[str]:
    """Names of the objects defined in ``__main__`` (the notebook) that ``obj`` needs."""
    names = sorted({n.split(".", 1)[1] for n in type_names if n.startswith("__main__.")})
    if names or list(type_names):
        return names
    found: set[str] = set()

    class Scan(pickle.Pickler):
        def reducer_override(self, value: Any) -> Any:
            target = value if isinstance(value, type) or callable(value) else type(value)
            if getattr(target, "__module__", None) == "__main__":
                found.add(getattr(target, "__qualname__", repr(target)))
            return NotImplemented

    try:
        Scan(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:
        return []
    return sorted(found)


def notebook_problem(names: list[str]) -> tuple[str, str]:
    """Why a model needing ``names`` from ``__main__`` is not servable, and the fix."""
    needed = listed([f"`{n}`" for n in names], 5)
    return (f"it needs {needed}, defined in the notebook itself (__main__), which no other "
            "process can import",
            f"Move {needed} into a module beside the notebook (say features.py), import it "
            "from there, refit the model and commit it again.")


def _installed_roots() -> list[Path]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"],
             *site.getsitepackages(), site.getusersitepackages()}
    return [Path(r).resolve() for r in roots if r]


def local_files(modules: Iterable[str]) -> dict[str, Path]:
    """``{top-level module: its file or package directory}`` for the local ones."""
    installed = _installed_roots()
    found: dict[str, Path] = {}
    for name in sorted(set(modules)):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) if module is not None else _spec_file(name)
        if name in ("__main__", "nbmci") or not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if any(path.is_relative_to(root) for root in installed):
            continue
        found[name] = path.parent if path.name == "__init__.py" else path
    return found


def _spec_file(name: str) -> str | None:
    """Where ``name`` would be imported from, without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def bundle(files: dict[str, Path]) -> bytes | None:
    """The canonical bytes of a bundle of ``files`` (see ``local_files``), or None."""
    if not files:
        return None
    sources: dict[str, str] = {}
    for path in files.values():
        members = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        base = path.parent
        for member in members:
            if "__pycache__" in member.parts:
                continue
            sources[member.relative_to(base).as_posix()] = member.read_text(encoding="utf-8")
    size = sum(len(s.encode()) for s in sources.values())
    if size > MAX_BYTES or len(sources) > MAX_FILES:
        raise UnsupportedDataError(
            f"The local modules the model needs ({', '.join(sorted(files))}) hold "
            f"{len(sources)} files, {size} bytes: more than a version stores.",
            hint="Install that code as a package in the serving environment instead.")
    payload = {"format": FORMAT, "modules": sorted(files), "files": sources}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _read(data: bytes, digest: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
        files, modules = payload["files"], payload["modules"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"Object {digest} is not a code bundle.") from exc
    if payload.get("format") != FORMAT or not isinstance(files, dict) or \
            not isinstance(modules, list):
        raise IntegrityError(f"Object {digest} is not a code bundle of format {FORMAT}.")
    for relative in files:
        parts = PurePosixPath(str(relative)).parts
        if not parts or str(relative).startswith("/") or ".." in parts or "\\" in relative \
                or not str(relative).endswith(".py"):
            raise IntegrityError(f"Code bundle {digest} names a file outside itself: "
                                 f"{str(relative)[:80]!r}; nothing was written.")
    return payload


def unpack(data: bytes, digest: str) -> tuple[Path, list[str]]:
    """Write a bundle's files into a new directory; ``(directory, its top-level modules)``.
    The directory lives as long as the process (functions may import lazily)."""
    payload = _read(data, digest)
    directory = Path(tempfile.mkdtemp(prefix="nbmci-code-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)  # nothing left in TMPDIR
    for relative, source in payload["files"].items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    return directory, [str(m) for m in payload["modules"]]


@contextlib.contextmanager
def importable(directory: Path, modules: list[str]) -> Iterator[None]:
    """Import ``modules`` from ``directory`` while the block runs (a model loading), then
    put back whatever modules of those names were imported before: two versions with
    different copies of ``features.py`` load side by side, each with its own."""
    def ours(name: str) -> bool:
        return name.split(".", 1)[0] in modules

    saved = {n: m for n, m in sys.modules.items() if ours(n)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, os.fspath(directory))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(os.fspath(directory))
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
