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


@pytest.mark.parametrize("rows", [20_000, 400_000], ids=["1MB", "16MB"])
def test_edits_store_about_what_changed_at_the_default_chunk_size(
        make_project: Any, fitted: Any, rows: int) -> None:
    """With the defaults, a frame of any size is cut into enough chunks (issue 15): appending
    1% stores <= 3% of it (or 256 KiB), deleting 1% in the middle <= 5% (or 512 KiB)."""
    project = make_project()
    frame = _frame(rows)
    one = _data_bytes(project.commit(fitted, {"X": frame}, name="m"))
    extra = _frame(rows // 100, seed=1)
    appended = project.commit(fitted, {"X": pd.concat([frame, extra], ignore_index=True)},
                              name="m")
    middle, count = rows // 2, rows // 100
    kept = pd.concat([frame.iloc[:middle], frame.iloc[middle + count:]], ignore_index=True)
    deleted = project.commit(fitted, {"X": kept}, name="m")
    assert _data_bytes(appended) <= max(0.03 * one, 256 << 10)
    assert _data_bytes(deleted) <= max(0.05 * one, 512 << 10)
    assert project.load_data("m@3")["X"].equals(kept)
    assert project.fsck().ok


def test_a_long_chunk_list_is_paged_and_a_damaged_page_is_refused(make_project: Any,
                                                                   fitted: Any) -> None:
    import json

    from nbmci.digest import canonical_json
    from nbmci.errors import IntegrityError
    from nbmci.snapshot.tables import read_dataset

    project = make_project()
    frame = _frame(400_000)
    version = project.commit(fitted, {"X": frame}, name="m")
    manifest = json.loads(project.store.get(version.data["X"].digest))
    assert len(manifest["pages"]) > 1 and "chunks" not in manifest["columns"][0]
    # a store written before pages (one manifest with every chunk list) still reads
    inline = {k: v for k, v in manifest.items() if k != "pages"}
    inline["columns"] = [{**column, "chunks": [], "stats": []} for column in manifest["columns"]]
    for page in manifest["pages"]:
        for column, part in zip(inline["columns"], json.loads(project.store.get(page))["columns"],
                                strict=True):
            column["chunks"] += part["chunks"]
            column["stats"] += part["stats"]
    assert read_dataset(project.store, project.store.put_bytes(canonical_json(inline)).digest
                        ).equals(frame)
    hostile = {"format": "nbmci.dataset-page/1", "columns": [], "loader": "x"}
    manifest["pages"][0] = project.store.put_bytes(canonical_json(hostile)).digest
    with pytest.raises(IntegrityError, match="not a page"):
        read_dataset(project.store, project.store.put_bytes(canonical_json(manifest)).digest)
