"""Adaptive micro-batching: concurrent requests for one model share one ``predict`` call.

One worker task per model takes whatever queued while the previous ``predict`` ran or arrives
in the same turn of the event loop (up to ``max_batch`` rows), optionally waits ``max_wait``
seconds for more, and runs ``predict``: on the event loop itself for models the host measured
as fast (``LiveModel.inline``; a thread hop and the GIL hand-over cost more than their
``predict``), else in a thread. At low load a request waits for nobody; under load batches grow
by themselves. When the server says how many requests it has in flight (``in_flight``: uvicorn's
request tasks, counted from the moment their headers are parsed, before any reaches the app), a
request for a fast model that is alone in the server skips the queue and the worker's event-loop
turns (about a third of a one-connection round trip) and predicts at once. Requests keep the
``LiveModel`` they started with: a batch is split where the model changes, so requests admitted
before a swap are answered by the old version.

A request waits at most ``timeout`` seconds (then 504). A ``predict`` that overruns it is left
to finish on its thread while the worker goes on with the next batch; once ``MAX_STUCK`` such
calls of one model are still running, its new requests get 503 at once instead of piling up
threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sized
from dataclasses import dataclass

import numpy as np

from nbmci.errors import FailedError, UnavailableError
from nbmci.serve.live import LiveModel
from nbmci.snapshot.schema import ColumnBatch

logger = logging.getLogger(__name__)
MAX_STUCK = 2  # overrunning predict calls of one model before it refuses new requests
INLINE_ROWS = 256  # larger batches go to a thread even for fast models


class OverloadedError(UnavailableError):
    def __init__(self, name: str, queued: int) -> None:
        super().__init__(f"Model '{name}' has {queued} rows waiting; the request was not queued.",
                         hint="Retry after a moment, or run more replicas.")


class PredictTimeoutError(UnavailableError):
    def __init__(self, ref: str, timeout: float) -> None:
        super().__init__(f"{ref} did not answer within {timeout:g} s.",
                         hint="Send fewer rows per request, or raise `nbmci serve --timeout`.")


class ModelStuckError(UnavailableError):
    def __init__(self, ref: str, stuck: int) -> None:
        super().__init__(f"{ref} has {stuck} predictions running past the timeout; new requests "
                         "are refused until they finish.",
                         hint="The model may hang on some inputs; check its logs and metrics.")


class PredictFailedError(FailedError):
    def __init__(self, ref: str, exc: BaseException) -> None:
        super().__init__(f"{ref} failed on this input: {type(exc).__name__}: {exc}",
                         hint="Check the values against the model's metadata "
                              "(GET /v2/models/NAME).")


Rows = np.ndarray | ColumnBatch


@dataclass(eq=False)
class _Job:
    live: LiveModel
    rows: Rows
    future: asyncio.Future[np.ndarray]
    method: str = "predict"


BatchObserver = Callable[[str, int], None]  # (model, rows of a predict call)
StuckObserver = Callable[[str, int], None]  # (model, predict calls now past the timeout)


class MicroBatcher:
    def __init__(self, *, max_batch: int = 64, max_wait: float = 0.0, max_queue: int = 4096,
                 timeout: float = 30.0, observe: BatchObserver | None = None,
                 on_stuck: StuckObserver | None = None) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.timeout = timeout
        self._observe = observe
        self._on_stuck = on_stuck
        self._queues: dict[str, asyncio.Queue[_Job]] = {}
        self._queued: dict[str, int] = {}
        self._stuck: dict[str, int] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self.in_flight: Sized | None = None  # the server's requests in flight, if it says

    async def predict(self, live: LiveModel, rows: Rows, method: str = "predict") -> np.ndarray:
        """``method``'s answers for ``rows`` from ``live``, batched with concurrent requests
        for the same model and method."""
        name = live.name
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue()
            self._queued[name] = self._stuck[name] = 0
            self._workers[name] = asyncio.create_task(self._work(name, queue),
                                                      name=f"nbmci-batch-{name}")
        if self._stuck[name] >= MAX_STUCK:
            raise ModelStuckError(live.ref, self._stuck[name])
        if live.inline and len(rows) <= INLINE_ROWS and not self._queued[name] \
                and self.in_flight is not None and len(self.in_flight) <= 1:
            try:
                return self._predict_inline(live, rows, method)
            except Exception as exc:
                raise _failed(live, exc) from exc
        if self._queued[name] + len(rows) > self.max_queue and self._queued[name]:
            raise OverloadedError(name, self._queued[name])
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queued[name] += len(rows)
        queue.put_nowait(_Job(live, rows, future, method))
        expiry = loop.call_later(self.timeout, _expire, future, live, self.timeout)
        try:
            return await future
        finally:
            expiry.cancel()

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._workers.clear()
        self._queues.clear()

    async def _collect(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        batch = [await queue.get()]
        size = len(batch[0].rows)
        # Requests that arrived in the same turn of the event loop as this one are still on
        # their way here; one more turn lets them join (about 1.5x the rows per predict call
        # at 16 connections), at the cost of one idle turn when there are none.
        await asyncio.sleep(0)
        while size < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())
            size += len(batch[-1].rows)
        if self.max_wait > 0 and size < self.max_batch:
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while size < self.max_batch:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
                size += len(batch[-1].rows)
        return batch

    async def _work(self, name: str, queue: asyncio.Queue[_Job]) -> None:
        while True:
            batch = await self._collect(queue)
            self._queued[name] -= sum(len(j.rows) for j in batch)
            jobs = [j for j in batch if not j.future.done()]  # timed-out requests are skipped
            for group in _split_by_model(jobs):
                await self._run(group)

    async def _run(self, jobs: list[_Job]) -> None:
        live, method = jobs[0].live, jobs[0].method
        matrix = _stack([j.rows for j in jobs])
        try:
            if live.inline and len(matrix) <= INLINE_ROWS:
                predicted = self._predict_inline(live, matrix, method)
            else:
                predicted = await self._in_thread(live, matrix, method)
                if predicted is None:  # overran the timeout; its requests got 504
                    return
        except Exception as exc:
            if len(jobs) > 1:  # one bad request must not fail its neighbours: retry alone
                for job in jobs:
                    await self._run([job])
                return
            _settle(jobs[0], exc=_failed(live, exc))
            return
        start = 0
        for job in jobs:
            _settle(job, predicted[start:start + len(job.rows)])
            start += len(job.rows)

    def _predict_inline(self, live: LiveModel, matrix: Rows, method: str) -> np.ndarray:
        if self._observe is not None:
            self._observe(live.name, len(matrix))
        return _checked(live.predict(matrix, method), len(matrix))

    async def _in_thread(self, live: LiveModel, matrix: Rows, method: str) -> np.ndarray | None:
        """``live.predict(matrix, method)`` on a thread; ``None`` if it overran the timeout."""
        if self._observe is not None:
            self._observe(live.name, len(matrix))
        call = asyncio.get_running_loop().run_in_executor(None, live.predict, matrix, method)
        done, _ = await asyncio.wait((call,), timeout=self.timeout)
        if done:
            return _checked(call.result(), len(matrix))
        name = live.name
        self._count_stuck(name, +1)
        logger.warning("%s: predict on %d rows overran %g s; it keeps its thread until it ends",
                       live.ref, len(matrix), self.timeout)

        def finished(_: asyncio.Future[np.ndarray]) -> None:
            self._count_stuck(name, -1)
            if not call.cancelled() and call.exception() is not None:
                logger.warning("%s: the overrunning predict failed: %s", live.ref,
                               call.exception())

        call.add_done_callback(finished)
        return None

    def _count_stuck(self, name: str, change: int) -> None:
        self._stuck[name] += change
        if self._on_stuck is not None:
            self._on_stuck(name, self._stuck[name])


def _checked(predicted: np.ndarray, rows: int) -> np.ndarray:
    if predicted.shape[:1] != (rows,):
        raise ValueError(f"{rows} rows gave predictions of shape {predicted.shape}")
    return predicted


def _failed(live: LiveModel, exc: BaseException) -> PredictFailedError:
    logger.warning("%s failed on a request: %s", live.ref, exc)
    return PredictFailedError(live.ref, exc)


def _expire(future: asyncio.Future[np.ndarray], live: LiveModel, timeout: float) -> None:
    if not future.done():
        future.set_exception(PredictTimeoutError(live.ref, timeout))


def _settle(job: _Job, result: np.ndarray | None = None, exc: BaseException | None = None) -> None:
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)  # type: ignore[arg-type]


def _stack(rows: list[Rows]) -> Rows:
    if len(rows) == 1:
        return rows[0]
    if isinstance(rows[0], ColumnBatch):
        return ColumnBatch.concat(rows)  # type: ignore[arg-type]
    return np.concatenate(rows)  # type: ignore[arg-type]


def _split_by_model(jobs: list[_Job]) -> list[list[_Job]]:
    """Runs of jobs for the same model and method, in order: each is one call."""
    groups: list[list[_Job]] = []
    for job in jobs:
        if groups and groups[-1][0].live is job.live and groups[-1][0].method == job.method:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
