"""Re-committing data this process stored before skips chunking and hashing, never content.

The memo is keyed on a fingerprint of the data's content; every test here changes the content
(or what the stored dataset depends on) in a way that keeps shapes and addresses alike and
checks that the change is stored and loads back.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbmci.api import Project
from nbmci.snapshot.memo import fingerprint


def _frame(rows: int = 50_000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "a": rng.standard_normal(rows),
        "n": rng.integers(0, 100, rows),
        "s": pd.Series(rng.choice(["x", "y", "z"], rows), dtype="str"),
        "c": pd.Categorical(rng.choice(["lo", "hi"], rows)),
        "t": pd.date_range("2024-01-01", periods=rows, freq="s", tz="UTC"),
        "m": pd.array(rng.integers(0, 5, rows), dtype="Int64"),
    })


def _new_data_bytes(version: Any) -> int:
    return version.stored.new_bytes - (version.model.size if version.stored.new_objects else 0)


@pytest.fixture
def chunked(make_project: Any) -> Project:
    return make_project(chunk_bytes=32 << 10)


def test_recommit_reuses_the_manifest_and_stores_nothing(chunked: Project, fitted: Any) -> None:
    frame = _frame()
    first = chunked.commit(fitted, {"X": frame}, name="m")
    again = chunked.commit(fitted, {"X": frame}, name="m")
    assert again.data["X"].digest == first.data["X"].digest
    assert _new_data_bytes(again) == 0
    assert again.stored.dedup_objects >= first.stored.new_objects - 1
    pd.testing.assert_frame_equal(chunked.load_data("m@2")["X"], frame)


@pytest.mark.parametrize("edit", ["float", "int", "string", "category", "time", "masked"])
def test_an_in_place_edit_of_one_value_is_stored(chunked: Project, fitted: Any,
                                                  edit: str) -> None:
    frame = _frame()
    first = chunked.commit(fitted, {"X": frame}, name="m")
    row = 31_337
    if edit == "float":
        frame.loc[row, "a"] = 1e9
    elif edit == "int":
        frame.loc[row, "n"] = 12_345
    elif edit == "string":
        frame.loc[row, "s"] = "w"
    elif edit == "category":
        frame.loc[row, "c"] = "lo" if frame.loc[row, "c"] == "hi" else "hi"
    elif edit == "time":
        frame.loc[row, "t"] = pd.Timestamp("1999-01-01", tz="UTC")
    else:
        frame.loc[row, "m"] = pd.NA
    again = chunked.commit(fitted, {"X": frame}, name="m")
    assert again.data["X"].digest != first.data["X"].digest
    assert 0 < _new_data_bytes(again)
    pd.testing.assert_frame_equal(chunked.load_data("m@2")["X"], frame)


def test_ndarray_edit_in_place_is_stored(chunked: Project, fitted: Any) -> None:
    values = np.arange(100_000, dtype=np.float64).reshape(-1, 4)
    first = chunked.commit(fitted, {"A": values}, name="m")
    values[1234, 2] = -1.0
    again = chunked.commit(fitted, {"A": values}, name="m")
    assert again.data["A"].digest != first.data["A"].digest
    np.testing.assert_array_equal(chunked.load_data("m@2")["A"], values)


def test_a_wiped_object_is_stored_again(chunked: Project, fitted: Any) -> None:
    frame = _frame()
    first = chunked.commit(fitted, {"X": frame}, name="m")
    manifest_path = chunked.store.path(first.data["X"].digest)
    os.chmod(os.path.dirname(manifest_path), 0o700)
    os.remove(manifest_path)
    again = chunked.commit(fitted, {"X": frame}, name="m")
    assert again.data["X"].digest == first.data["X"].digest
    assert chunked.fsck().ok
    pd.testing.assert_frame_equal(chunked.load_data("m@1")["X"], frame)


def test_fingerprint_sees_every_part_of_the_content() -> None:
    frame = _frame(1_000)
    base = fingerprint(frame)
    assert base is not None and base == fingerprint(frame.copy())
    variants = {
        "renamed": frame.rename(columns={"a": "b"}),
        "reordered": frame[list(reversed(frame.columns))],
        "index": frame.set_axis(pd.RangeIndex(1, 1_001)),
        "index name": frame.rename_axis("row"),
        "dtype": frame.astype({"n": "int32"}).astype({"n": "int64"}).astype({"a": "float32"}),
        "timezone": frame.assign(t=frame["t"].dt.tz_convert("Europe/Paris")),
        "categories": frame.assign(c=frame["c"].cat.rename_categories({"lo": "low"})),
        "ordered": frame.assign(c=frame["c"].cat.as_ordered()),
        "null": frame.assign(m=frame["m"].where(frame.index != 7)),
        "sliced": frame.iloc[1:],
    }
    seen = {base}
    for label, variant in variants.items():
        found = fingerprint(variant)
        assert found is not None, label
        assert found not in seen, label
        seen.add(found)
    assert fingerprint(frame, "nbmci.dataset/1", 1) != fingerprint(frame, "nbmci.dataset/1", 2)
    series = frame["a"]
    assert fingerprint(series) != fingerprint(series.rename("other"))
    assert fingerprint(series.to_numpy()) != fingerprint(series.to_numpy().reshape(-1, 2))


def test_python_objects_get_no_fingerprint() -> None:
    frame = pd.DataFrame({"o": pd.Series([{"k": 1}, [2], "3"] * 10, dtype=object)})
    assert fingerprint(frame) is None
    assert fingerprint(pd.DataFrame({"a": [1.0]}, index=pd.Index(["r"], dtype=object))) is None
