"""Kernels forked from a warm process: the CI runner's answer to per-kernel start-up cost.

A zygote process imports ipykernel and every module the evaluation notebooks import, once.
Each kernel is then a ``fork()`` of it (milliseconds, with those modules already loaded)
instead of a fresh interpreter that boots and imports everything again. The kernel is an
ordinary ipykernel serving the connection file jupyter_client wrote; only its launch differs.

Run as ``python -m nbmci.ci.zygote MODULE...``: it prints ``ready``, then reads one JSON
request per line (connection file, cwd, env) and answers each with the forked kernel's pid.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from jupyter_client.manager import KernelManager


class Zygote:
    """The parent side: starts the warm process and asks it for kernels."""

    def __init__(self, modules: list[str], env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nbmci.ci.zygote", *modules], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
            start_new_session=True)  # an interrupt of the caller's group must not kill it
        self._lock = threading.Lock()
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the kernel zygote did not start")

    def fork(self, connection_file: str, cwd: str, env: dict[str, str]) -> int:
        assert self._process.stdin is not None and self._process.stdout is not None
        request = json.dumps({"connection_file": connection_file, "cwd": cwd, "env": env})
        with self._lock:
            self._process.stdin.write(request + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        if not answer.strip().isdigit():
            raise RuntimeError("the kernel zygote stopped")
        return int(answer)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


class ForkedProcess:
    """Enough of ``subprocess.Popen`` for jupyter_client to manage a forked kernel.

    The zygote reaps its children, so an exited kernel simply stops existing."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkedKernelManager(KernelManager):
    """A KernelManager whose kernel is forked from a zygote instead of started afresh."""

    def __init__(self, zygote: Zygote, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._zygote = zygote

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        assert self.provisioner is not None
        env = {str(k): str(v) for k, v in (kw.get("env") or os.environ).items()}
        pid = self._zygote.fork(self.connection_file, str(kw.get("cwd") or os.getcwd()), env)
        provisioner: Any = self.provisioner
        provisioner.process = ForkedProcess(pid)
        provisioner.pid = provisioner.pgid = pid
        provisioner.cwd = kw.get("cwd")
        self._reconcile_connection_info(provisioner.connection_info)


def forks_here(kernel_name: str) -> bool:
    """Whether ``kernel_name`` is this interpreter's ipykernel, so forking gives the same
    kernel the spec would start."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        return False
    python = argv[0] if argv else ""
    same = python in ("python", "python3", "{python}", sys.executable) or (
        os.path.exists(python) and os.path.samefile(python, sys.executable))
    return same and "ipykernel_launcher" in " ".join(argv)


# -- the zygote process ----------------------------------------------------------------------


def _serve(modules: list[str]) -> None:
    import ipykernel.kernelapp  # noqa: F401  (the bulk of a kernel's start-up)

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # the notebook will report it properly
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become_kernel(request)
        print(pid, flush=True)


def _become_kernel(request: dict[str, Any]) -> None:
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])

        sys.stdin = open(os.devnull)
        from ipykernel.kernelapp import IPKernelApp

        # the kernel ends when the zygote does (which ends when the runner does, even on
        # SIGKILL: its stdin closes), as a kernel jupyter_client starts ends with its parent
        IPKernelApp.launch_instance(argv=["-f", request["connection_file"],
                                          f"--IPKernelApp.parent_handle={os.getppid()}"])
    finally:
        os._exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1:])
