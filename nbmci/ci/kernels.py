"""Kernels started (and warmed) ahead, so a CI run never waits for a kernel to boot.

While one notebook runs, the next kernel is already up with the modules the notebooks import
themselves loaded: forked from a warm zygote when the kernel is this interpreter's ipykernel,
else started normally and told to import them. Each kernel runs exactly one notebook, then
is shut down.

Which kernel runs is the project's choice, never the notebook's: its ``kernelspec`` may be
missing (``nbformat.v4.new_notebook()``, jupytext) or name a kernel of another machine. With
no ``kernel`` configured it is this interpreter's own ipykernel, so the notebooks import the
same nbmci and packages as the runner, whatever "python3" kernelspecs are installed.
"""

from __future__ import annotations

import ast
import itertools
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmci.ci.zygote import ForkedKernelManager, Zygote, forks_here
from nbmci.errors import ConfigError, InvalidInputError

logger = logging.getLogger(__name__)
_START_TIMEOUT = 60.0
_POLL = 0.25  # seconds between looks for a closed pool while waiting for a kernel


@dataclass(frozen=True)
class Kernel:
    """The kernel notebooks run on: a kernelspec name, and the language papermill writes the
    injected parameters in (taken from the kernelspec, not from the notebook)."""

    name: str
    language: str | None
    native: bool = False  # this interpreter's ipykernel, not a kernelspec lookup

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language, "native": self.native}


NATIVE = Kernel("python3", "python", native=True)


def find_kernel(name: str | None, where: str) -> Kernel:
    """The installed kernel ``name`` (None: this interpreter's python3). ``where`` says which
    setting named it; an unknown name is an error that lists the installed kernels."""
    if name is None:
        return NATIVE
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    specs = KernelSpecManager()
    try:
        spec = specs.get_kernel_spec(name)
    except NoSuchKernel:
        installed = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        error = InvalidInputError if where.startswith("--") else ConfigError
        raise error(f"Kernel {name!r} (from {where}) is not installed; the installed kernels "
                    f"are: {installed}.",
                    hint="Name one of them, install it (for a Python environment: `python -m "
                         f"ipykernel install --user --name {name}`), or leave kernel unset "
                         "to run this Python.") from None
    return Kernel(name, spec.language or None)


def _native_specs() -> Any:
    """A kernelspec manager whose "python3" is always this interpreter's ipykernel."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpecManager

    class NativeSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> Any:
            return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())

    return NativeSpecs()


def imported_modules(sources: Iterable[str]) -> list[str]:
    """Top-level modules imported at the top level of notebook cells, in order."""
    found: dict[str, None] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # magics and shell escapes: not worth warming
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault(alias.name, None)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.setdefault(node.module, None)
    return list(found)


def warmup_code(modules: list[str]) -> str:
    """Code that imports ``modules`` without binding names; failures are left to the notebook."""
    return ("import importlib as _i\n"
            f"for _m in {modules!r}:\n"
            "    try:\n        _i.import_module(_m)\n    except Exception:\n        pass\n"
            "del _i, _m\n")


class KernelPool:
    """Keeps ``size`` started kernels ready; ``take()`` hands one out, ``discard()`` ends it."""

    def __init__(self, kernel: Kernel, size: int, cwd: Path, env: dict[str, str],
                 warm_modules: list[str]) -> None:
        self.kernel = kernel
        self.kernel_name = kernel.name
        self.cwd = cwd
        self.env = env
        self._specs = _native_specs() if kernel.native else None
        self._zygote = None
        if kernel.native or forks_here(kernel.name):
            try:
                self._zygote = Zygote(warm_modules, env)
            except (OSError, RuntimeError) as exc:
                logger.warning("starting kernels normally: %s", exc)
        # forked kernels already hold the modules; started ones import them while they wait
        self.code = warmup_code(warm_modules) if warm_modules and not self._zygote else ""
        self._sockets = Path(tempfile.mkdtemp(prefix="nbmci-kernels-"))
        self._count = itertools.count()
        self._ready: queue.Queue[Any] = queue.Queue()
        self._wanted = threading.Semaphore(size)
        self._closed = threading.Event()
        self._live: set[Any] = set()
        self._lock = threading.Lock()
        self._starter = threading.Thread(target=self._keep_filled, name="nbmci-kernels",
                                         daemon=True)
        self._starter.start()

    def _keep_filled(self) -> None:
        while not self._closed.is_set():
            self._wanted.acquire()
            if self._closed.is_set():
                return
            try:
                self._ready.put(self._start())
            except Exception as exc:  # surfaced to the notebook that takes this slot
                logger.warning("could not start kernel %r: %s", self.kernel_name, exc)
                self._ready.put(exc)

    def _start(self) -> Any:
        from jupyter_client.manager import KernelManager

        # IPC sockets: local-only, and no "running over TCP without encryption" warning.
        # IPC sockets and the connection file in the pool's own folder: close() removes
        # them all (jupyter_client would put connection files loose in the temp folder)
        number = next(self._count)
        options: dict[str, Any] = {
            "kernel_name": self.kernel_name, "transport": "ipc",
            "ip": str(self._sockets / f"kernel-{number}"),
            "connection_file": str(self._sockets / f"kernel-{number}.json")}
        if self._specs is not None:
            options["kernel_spec_manager"] = self._specs
        manager = (ForkedKernelManager(self._zygote, **options) if self._zygote
                   else KernelManager(**options))
        manager.start_kernel(cwd=str(self.cwd), env=self.env)
        with self._lock:
            self._live.add(manager)
        if self.code:
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=_START_TIMEOUT)
                client.execute_interactive(self.code, timeout=_START_TIMEOUT, store_history=False,
                                           output_hook=lambda msg: None)
            finally:
                client.stop_channels()
        return manager

    def take(self, timeout: float = _START_TIMEOUT * 2) -> Any:
        """A started kernel manager; raises the start error if the kernel failed to boot."""
        deadline = time.monotonic() + timeout
        while True:  # wakes up to see close(): an interrupted run must not wait for kernels
            try:
                item = self._ready.get(timeout=_POLL)
                break
            except queue.Empty:
                if self._closed.is_set():
                    raise RuntimeError("CI was interrupted") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no kernel started within {timeout:g} s") from None
        self._wanted.release()  # start the next one while this one works
        if isinstance(item, Exception):
            raise item
        return item

    def discard(self, manager: Any) -> None:
        """Shut a used kernel down (now: its state must not leak into another run)."""
        with self._lock:
            self._live.discard(manager)
        try:
            manager.shutdown_kernel(now=True)
        except Exception as exc:
            logger.debug("kernel shutdown: %s", exc)

    def close(self) -> None:
        self._closed.set()
        self._wanted.release()
        self._starter.join(timeout=_START_TIMEOUT)
        with self._lock:
            managers = list(self._live)
            self._live.clear()
        for manager in managers:
            try:
                manager.shutdown_kernel(now=True)
            except Exception as exc:
                logger.debug("kernel shutdown: %s", exc)
        if self._zygote is not None:
            self._zygote.close()
        shutil.rmtree(self._sockets, ignore_errors=True)
