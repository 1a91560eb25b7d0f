"""The micro-batcher on its own: who shares a predict call, and who is answered by what."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import numpy as np
import pytest

from nbmci.serve.batching import MicroBatcher, OverloadedError, PredictFailedError
from nbmci.serve.live import LiveModel
from tests.serve.conftest import numeric_live


class Summer:
    """A model that sums each row, refuses negative values, and remembers its calls."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.calls: list[int] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        if (X < 0).any():
            raise ValueError("negative values")
        return X.sum(axis=1) + self.offset


def _live(model: Summer, version: int = 1) -> LiveModel:
    return numeric_live(model, ("a", "b"), version=version, inline=True)


def _rows(*values: float) -> np.ndarray:
    return np.array([[v, 1.0] for v in values])


async def _gather_on(batcher: MicroBatcher, *requests: tuple[LiveModel, np.ndarray]) -> list[Any]:
    try:
        return await asyncio.gather(*(batcher.predict(live, rows) for live, rows in requests),
                                    return_exceptions=True)
    finally:
        await batcher.close()


def test_requests_of_one_turn_share_one_predict_call() -> None:
    model = Summer()
    live = _live(model)
    sizes: list[int] = []
    batcher = MicroBatcher(observe=lambda name, rows: sizes.append(rows))
    answers = asyncio.run(_gather_on(batcher, *((live, _rows(i)) for i in range(10))))
    assert [a.tolist() for a in answers] == [[i + 1.0] for i in range(10)]
    assert model.calls == [10] and sizes == [10]


def test_batches_stop_at_max_batch_rows() -> None:
    model = Summer()
    live = _live(model)
    batcher = MicroBatcher(max_batch=4)
    answers = asyncio.run(_gather_on(batcher, *((live, _rows(i, i)) for i in range(5))))
    assert [a.tolist() for a in answers] == [[i + 1.0, i + 1.0] for i in range(5)]
    assert model.calls == [4, 4, 2]


def test_a_bad_request_fails_alone() -> None:
    model = Summer()
    live = _live(model)
    answers = asyncio.run(_gather_on(MicroBatcher(), (live, _rows(1)), (live, _rows(-1)),
                                     (live, _rows(2))))
    assert answers[0].tolist() == [2.0] and answers[2].tolist() == [3.0]
    assert isinstance(answers[1], PredictFailedError)
    assert "m@1 failed on this input: ValueError: negative values" in str(answers[1])


def test_each_request_is_answered_by_the_version_it_started_with() -> None:
    old, new = Summer(), Summer(offset=100)
    before, after = _live(old, 1), _live(new, 2)
    answers = asyncio.run(_gather_on(MicroBatcher(), (before, _rows(1)), (before, _rows(2)),
                                     (after, _rows(3)), (before, _rows(4))))
    assert [a.tolist() for a in answers] == [[2.0], [3.0], [104.0], [5.0]]
    assert old.calls == [2, 1] and new.calls == [1]


def test_a_full_queue_refuses_new_rows_at_once() -> None:
    live = _live(Summer())
    batcher = MicroBatcher(max_queue=3)
    answers = asyncio.run(_gather_on(batcher, (live, _rows(1, 2)), (live, _rows(3, 4))))
    assert answers[0].tolist() == [2.0, 3.0]
    assert isinstance(answers[1], OverloadedError)


@pytest.mark.parametrize("max_wait", [0.0, 0.05])
def test_a_lone_request_is_answered(max_wait: float) -> None:
    live = _live(Summer())
    answers = asyncio.run(_gather_on(MicroBatcher(max_wait=max_wait), (live, _rows(7))))
    assert answers[0].tolist() == [8.0]


def test_a_request_one_turn_behind_joins_the_batch() -> None:
    """As when two requests' bytes arrive together: one reaches the batcher a turn later."""
    model = Summer()
    live = _live(model)

    async def scenario() -> list[Any]:
        batcher = MicroBatcher()

        async def late() -> np.ndarray:
            await asyncio.sleep(0)
            return await batcher.predict(live, _rows(2))

        try:
            return list(await asyncio.gather(batcher.predict(live, _rows(1)), late()))
        finally:
            await batcher.close()

    assert [a.tolist() for a in asyncio.run(scenario())] == [[2.0], [3.0]]
    assert model.calls == [2]


def _alone_scenario(in_flight: set[int], live: LiveModel, *rows: np.ndarray) -> list[Any]:
    async def scenario() -> list[Any]:
        batcher = MicroBatcher()
        batcher.in_flight = in_flight
        try:
            return [await batcher.predict(live, r) for r in rows]  # one after another
        finally:
            await batcher.close()

    return asyncio.run(scenario())


def _first_step(in_flight: set[int] | None, live: LiveModel) -> Any:
    """The answer if ``predict`` finishes without giving the event loop a turn, else None."""
    async def scenario() -> Any:
        batcher = MicroBatcher()
        batcher.in_flight = in_flight
        step = batcher.predict(live, _rows(1))
        try:
            step.send(None)
        except StopIteration as done:
            return done.value
        finally:
            step.close()
            await batcher.close()
        return None  # it is waiting for the worker

    return asyncio.run(scenario())


def test_a_request_alone_in_the_server_predicts_without_waiting_a_turn() -> None:
    model = Summer()
    live = _live(model)
    assert _first_step({1}, live).tolist() == [2.0]
    assert _first_step({1, 2}, live) is None  # another request is in flight: queue
    assert _first_step(None, live) is None  # the server does not say: queue
    assert model.calls == [1]
    with pytest.raises(PredictFailedError, match="negative values"):
        _alone_scenario({1}, live, _rows(-1))


def test_requests_in_flight_together_still_share_one_call() -> None:
    """The server counts requests from their headers on, before any reaches the batcher: with
    three in flight, the first to arrive waits for the others' rows."""
    model = Summer()
    live = _live(model)

    async def scenario() -> list[Any]:
        batcher = MicroBatcher()
        batcher.in_flight = {1, 2, 3}
        try:
            return list(await asyncio.gather(*(batcher.predict(live, _rows(i)) for i in range(3))))
        finally:
            await batcher.close()

    assert [a.tolist() for a in asyncio.run(scenario())] == [[1.0], [2.0], [3.0]]
    assert model.calls == [3]


def test_a_slow_model_alone_still_predicts_on_a_thread() -> None:
    threads: list[int] = []

    class Slow(Summer):
        def predict(self, X: np.ndarray) -> np.ndarray:
            threads.append(threading.get_ident())
            return super().predict(X)

    live = dataclasses.replace(_live(Slow()), inline=False)
    answers = _alone_scenario({1}, live, _rows(5))
    assert answers[0].tolist() == [6.0] and threads and threads[0] != threading.get_ident()
