"""The one servability check: a version loads from the store alone and reproduces its outputs.

At commit the model's output methods run on the example rows *as a request would rebuild
them* (encoded to JSON, decoded by the schema), and their outputs are recorded with the
version (``record_outputs``). A version is servable when, in a fresh process that has none of
the notebook's globals, it loads from the store (with its code bundle) and ``replay`` gives the
recorded outputs again. Commit runs this check in the background, CI reports it, ``publish``
refuses a version that fails it, and the server's smoke test is ``replay`` through its own
predict path.

Run as ``python -P -m nbmci.snapshot.servable`` it is that fresh process: it reads one JSON
request on stdin and prints one JSON verdict (``--warm``: the warm process of ``Checker``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbmci.snapshot.schema import ColumnBatch, InputSchema

logger = logging.getLogger(__name__)
RTOL, ATOL = 1e-7, 1e-10  # floats "reproduce" within these (BLAS builds differ in the last bits)
FRESH_TIMEOUT = 300.0  # seconds the fresh process may take to load and replay
Predict = Callable[[ColumnBatch, str], Any]


class ReplayError(Exception):
    """The reason a version does not reproduce its recorded outputs (internal)."""


@dataclass(frozen=True)
class Verdict:
    servable: bool
    reason: str | None
    seconds: float
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"servable": self.servable, "reason": self.reason, "hint": self.hint,
                "seconds": round(self.seconds, 4)}


# -- outputs ---------------------------------------------------------------------------------


def _kind(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind == "f":
        return "float"
    if kind in "iu":
        return "integer"
    if kind == "b":
        return "boolean"
    if kind in "US" or (kind == "O" and all(isinstance(v, str) for v in array.ravel()[:50])):
        return "string"
    return "object"


def encode_output(values: Any) -> dict[str, Any]:
    """An output as JSON: ``{"type", "shape" (past the rows), "values"}``."""
    from nbmci.snapshot.jsonable import to_jsonable

    array = np.asarray(values)
    kind = _kind(array)
    if kind == "float":  # JSON has no NaN or infinity (log-probabilities of 0 are -inf)
        boxed = array.astype(object)
        boxed[np.isinf(array)] = np.where(array[np.isinf(array)] > 0, "inf", "-inf")
        listed: Any = np.where(np.isnan(array), None, boxed).tolist()
    else:
        listed = to_jsonable(array.tolist())
    return {"type": kind, "shape": list(array.shape[1:]), "values": listed}


def mismatch(recorded: Mapping[str, Any], values: Any) -> str | None:
    """Why ``values`` are not the ``recorded`` output, or None when they are."""
    array = np.asarray(values)
    expected = recorded.get("values")
    shape = [len(expected) if isinstance(expected, list) else 0, *recorded.get("shape", [])]
    if list(array.shape) != shape:
        return f"it gave shape {list(array.shape)} where {shape} was recorded"
    if recorded.get("type") == "float":
        wanted = np.array(expected, dtype=np.float64)
        try:
            got = array.astype(np.float64)
        except (TypeError, ValueError):
            return "it gave non-numbers where numbers were recorded"
        if not np.allclose(got, wanted, rtol=RTOL, atol=ATOL, equal_nan=True):
            finite = np.isfinite(got) & np.isfinite(wanted)
            worst = float(np.max(np.abs(got[finite] - wanted[finite]), initial=0.0))
            return f"its numbers differ from the recorded ones (by up to {worst:.3g})"
        return None
    if encode_output(array)["values"] != expected:
        return "its values differ from the recorded ones"
    return None


def record_outputs(model: Any, schema: InputSchema, example: Mapping[str, Any],
                   original: Any) -> tuple[dict[str, Any], str | None]:
    """Each output method's answer on the example rows rebuilt from JSON, and the problem,
    if any, that makes the version not servable (a method failing, or the rebuilt rows
    predicting differently from ``original``, the rows as training had them)."""
    from nbmci.errors import InvalidInputError
    from nbmci.snapshot.estimators import methods, serving_schema

    schema = serving_schema(schema, model)  # as the server will decode
    try:
        rebuilt = schema.model_input(schema.decode_rows(example["rows"], "example",
                                                        example["columns"]))
    except InvalidInputError as exc:
        return {}, f"its example rows are not rows it takes: {exc.message}"
    recorded: dict[str, Any] = {}
    problem = None
    for method in methods(model):
        try:
            values = np.asarray(getattr(model, method)(rebuilt))
        except Exception as exc:
            if method == "predict" or method == "transform":
                return recorded, (f"{method} fails on its example rows rebuilt as a request "
                                  f"would: {type(exc).__name__}: {_short(exc)}")
            continue  # e.g. predict_proba of an SVC fit without probability=True
        if len(values) != len(example["rows"]):
            continue
        recorded[method] = encode_output(values)
        if method == "predict" and problem is None:
            problem = _same_as_training(model, original, recorded[method])
    return recorded, problem


def _same_as_training(model: Any, original: Any, recorded: Mapping[str, Any]) -> str | None:
    try:
        direct = np.asarray(model.predict(original))
    except Exception:
        return None  # the original rows are not what predict takes; the rebuilt ones are
    why = mismatch(recorded, direct)
    if why is None:
        return None
    return ("its example rows rebuilt from JSON predict differently from the same rows as "
            f"training had them ({why}); a request could not reproduce the training input")


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


# -- replay ----------------------------------------------------------------------------------


def example_batch(schema: InputSchema, signature: Mapping[str, Any]) -> ColumnBatch:
    example = signature.get("example") or {}
    if not example.get("rows"):
        raise ReplayError("it has no example rows to check")
    return schema.decode_rows(example["rows"], "example", example.get("columns"))


def replay(signature: Mapping[str, Any], schema: InputSchema, predict: Predict) -> None:
    """Check that ``predict(batch, method)`` gives every recorded output on the example rows;
    raises ``ReplayError`` with the reason."""
    recorded = signature.get("outputs_recorded") or {}
    if not recorded:
        raise ReplayError("no outputs were recorded on its example rows at commit")
    try:
        batch = example_batch(schema, signature)
    except ReplayError:
        raise
    except Exception as exc:
        raise ReplayError(f"its example rows do not decode: {_short(exc)}") from exc
    for method, output in recorded.items():
        try:
            values = predict(batch, method)
        except Exception as exc:
            raise ReplayError(f"{method} fails on its example rows: {type(exc).__name__}: "
                              f"{_short(exc)}") from exc
        why = mismatch(output, values)
        if why is not None:
            raise ReplayError(f"{method} does not reproduce the outputs recorded at commit: "
                              f"{why}")


def model_predict(model: Any, schema: InputSchema) -> Predict:
    """``predict(batch, method)`` straight through the model, as the check calls it."""
    def predict(batch: ColumnBatch, method: str) -> Any:
        return getattr(model, method)(schema.model_input(batch))

    return predict


# -- the fresh process -----------------------------------------------------------------------

# imported by the warm process before it forks a checker (about 1.5 s a fresh interpreter
# would otherwise spend on every check)
WARM_MODULES = ("numpy", "pandas", "pyarrow", "sklearn.pipeline", "sklearn.compose",
                "sklearn.preprocessing", "sklearn.linear_model", "sklearn.ensemble",
                "skops.io", "nbmci.store", "nbmci.snapshot.serializers",
                "nbmci.snapshot.estimators")


class Checker:
    """The caller's side of the fresh processes: a warm interpreter, started on first use in
    an empty directory with nothing of the caller's ``sys.path`` but what the environment
    gives every process, that imported only ``WARM_MODULES`` and forks one child per check.
    The child has none of the caller's globals or modules: a fresh process, minus start-up."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self._directory = tempfile.TemporaryDirectory(prefix="nbmci-check-")
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "nbmci.snapshot.servable", "--warm"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self._directory.name, env=env, text=True, start_new_session=True)
        return self._process

    def check(self, request: Mapping[str, Any], timeout: float = FRESH_TIMEOUT) -> Verdict:
        started = time.perf_counter()
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = _read_line(process, timeout)
            except (OSError, TimeoutError) as exc:
                self.close()
                reason = (f"loading and replaying took over {timeout:g} s in a fresh process"
                          if isinstance(exc, TimeoutError) else
                          f"the fresh process failed: {exc}")
                return Verdict(False, reason, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if not line:
            self.close()
            return Verdict(False, "the fresh process exited while checking (a crash, or out "
                                  "of memory)", seconds)
        answer = json.loads(line)
        return Verdict(bool(answer["servable"]), answer.get("reason"), seconds,
                       answer.get("hint"))

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError, ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError()
    return process.stdout.readline()


_checker = Checker()
atexit.register(_checker.close)


def check_in_fresh_process(request: Mapping[str, Any],
                           timeout: float = FRESH_TIMEOUT) -> Verdict:
    """Load a version from the store alone and replay it, in a fresh process.

    ``request``: ``store`` (URL), ``format``, ``digest``, ``trusted_types``, ``code`` (a code
    bundle's digest or None), ``trust`` (load a pickle), ``ref`` and ``signature``."""
    return _checker.check(request, timeout)


def _serve_warm() -> None:
    """The warm process: import, then fork one child per request line; the child answers
    one JSON line on stdout and exits."""
    for module in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                print(json.dumps(_answer(json.loads(line))), flush=True)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            print(json.dumps({"servable": False, "reason": "the fresh process crashed while "
                              f"checking (wait status {status})"}), flush=True)


def _check_here(request: Mapping[str, Any]) -> dict[str, Any]:
    """The fresh process's side: load from the store alone, replay, say what happened."""
    from nbmci.snapshot.serializers import load_model
    from nbmci.store import open_store

    store = open_store(str(request["store"]))
    model = load_version_model(store, request["format"], request["digest"],
                               list(request["trusted_types"]), request.get("code"),
                               trust=bool(request.get("trust")), ref=str(request.get("ref")),
                               loader=load_model)
    from nbmci.snapshot.estimators import serving_schema

    signature = request["signature"]
    schema = serving_schema(InputSchema.from_dict(signature["schema"]), model)
    replay(signature, schema, model_predict(model, schema))
    return {"servable": True, "reason": None}


def load_version_model(store: Any, format: str, digest: str, trusted_types: list[str],
                       code: str | None, *, trust: bool, ref: str,
                       loader: Callable[..., Any]) -> Any:
    """Load a version's model from ``store``, its code bundle importable while it loads."""
    from nbmci.snapshot import code as bundles

    data = store.get(digest)
    if not code:
        return loader(format, data, trusted_types, trust=trust, ref=ref)
    directory, modules = bundles.unpack(store.get(code), code)
    with bundles.importable(directory, modules):
        return loader(format, data, trusted_types, trust=trust, ref=ref)


def _answer(request: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _check_here(request)
    except ReplayError as exc:
        return {"servable": False, "reason": str(exc)}
    except ModuleNotFoundError as exc:
        return {"servable": False, "reason": f"it needs the module '{exc.name}', which a "
                "fresh process cannot import",
                "hint": f"Install '{exc.name}' where the model is served, or keep it as a "
                        "module beside the notebook so the version stores it."}
    except Exception as exc:
        return {"servable": False, "reason": f"it does not load from the store alone: "
                f"{type(exc).__name__}: {_short(exc)}"}


if __name__ == "__main__":
    if sys.argv[1:] == ["--warm"]:
        _serve_warm()
    else:  # one check: a JSON request on stdin, the verdict on stdout
        print(json.dumps(_answer(json.loads(sys.stdin.read()))), flush=True)
