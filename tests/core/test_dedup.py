"""Deduplication: unchanged data stores nothing, edits store about what changed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbmci.api import Project

ROWS = 200_000
CHUNK = 64 << 10  # small chunks so a 200k-row frame chunks like a large one


def _frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.standard_normal(rows),
        "b": rng.standard_normal(rows),
        "n": rng.integers(0, 1000, rows),
        "s": rng.choice(["red", "green", "blue"], rows),
        "t": pd.date_range("2021-01-01", periods=rows, freq="min", tz="UTC"),
    })


@pytest.fixture
def small_chunks(make_project: Any) -> Project:
    return make_project(chunk_bytes=CHUNK)


def _data_bytes(version: Any) -> int:
    return version.stored.new_bytes - (version.model.size if version.stored.new_objects else 0)


def test_unchanged_data_stores_zero_bytes(small_chunks: Project, fitted: Any) -> None:
    frame = _frame()
    first = small_chunks.commit(fitted, {"X": frame}, name="m")
    again = small_chunks.commit(fitted, {"X": frame.copy()}, name="m")
    assert first.stored.new_objects > 20  # really chunked
    assert _data_bytes(again) == 0
    assert again.data["X"].digest == first.data["X"].digest
    # another process (no memory of the first commit) chunks and hashes to the same objects
    fresh = Project(small_chunks.settings)
    try:
        third = fresh.commit(fitted, {"X": frame}, name="m")
    finally:
        fresh.close()
    assert _data_bytes(third) == 0
    assert third.data["X"].digest == first.data["X"].digest


def test_append_stores_about_the_appended_rows(small_chunks: Project, fitted: Any) -> None:
    frame = _frame()
    first = small_chunks.commit(fitted, {"X": frame}, name="m")
    extra = _frame(ROWS // 100, seed=1)
    appended = small_chunks.commit(fitted, {"X": pd.concat([frame, extra], ignore_index=True)},
                                   name="m")
    # the appended 1% plus at most the old tail chunk that now continues
    assert _data_bytes(appended) <= 0.03 * _data_bytes(first)


@pytest.mark.parametrize("edit", ["delete", "insert"])
def test_middle_edit_stores_about_the_changed_part(small_chunks: Project, fitted: Any,
                                                   edit: str) -> None:
    frame = _frame()
    first = small_chunks.commit(fitted, {"X": frame}, name="m")
    middle = ROWS // 2
    if edit == "delete":
        changed = frame.drop(index=range(middle, middle + ROWS // 100)).reset_index(drop=True)
    else:
        changed = pd.concat([frame.iloc[:middle], _frame(ROWS // 100, seed=2),
                             frame.iloc[middle:]], ignore_index=True)
    second = small_chunks.commit(fitted, {"X": changed}, name="m")
    assert _data_bytes(second) <= 0.05 * _data_bytes(first)
    pd.testing.assert_frame_equal(small_chunks.load_data(second.ref)["X"], changed)


def test_new_column_reuses_the_other_columns(small_chunks: Project, fitted: Any) -> None:
    frame = _frame()
    first = small_chunks.commit(fitted, {"X": frame}, name="m")
    widened = small_chunks.commit(fitted, {"X": frame.assign(z=1.5)}, name="m")
    assert _data_bytes(widened) <= 0.3 * _data_bytes(first)


def test_arrays_deduplicate_too(small_chunks: Project, fitted: Any) -> None:
    array = np.random.default_rng(3).standard_normal((ROWS, 4))
    first = small_chunks.commit(fitted, {"A": array}, name="m")
    again = small_chunks.commit(fitted, {"A": np.vstack([array, array[:100]])}, name="m")
    assert _data_bytes(again) <= 0.03 * _data_bytes(first)


def test_stats_stay_exact_when_chunks_are_reused(small_chunks: Project, fitted: Any) -> None:
    frame = _frame()
    small_chunks.commit(fitted, {"X": frame}, name="m")
    grown = pd.concat([frame, _frame(5000, seed=9)], ignore_index=True)
    stats = small_chunks.commit(fitted, {"X": grown}, name="m").data["X"].stats
    assert stats["a"]["count"] == len(grown)
    assert stats["a"]["mean"] == pytest.approx(grown["a"].mean(), rel=1e-9)
    assert stats["a"]["std"] == pytest.approx(grown["a"].std(ddof=0), rel=1e-9)
    assert stats["n"]["max"] == grown["n"].max()
    assert stats["s"]["top"] == grown["s"].value_counts().to_dict()
