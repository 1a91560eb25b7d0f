"""The Python API end to end on real files: commit, load, load_data, versions, diff, show."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import nbmci
from nbmci.api import Project
from nbmci.errors import (
    InvalidInputError,
    ModelNotFoundError,
    PickleFallbackWarning,
    UnsupportedDataError,
    UntrustedModelError,
    VersionNotFoundError,
)


def _frames() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    n = 500
    frame = pd.DataFrame({
        "f64": rng.standard_normal(n),
        "f32": rng.standard_normal(n).astype("float32"),
        "i64": rng.integers(-5, 5, n),
        "u8": rng.integers(0, 255, n).astype("uint8"),
        "nullable_int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)),
                                 dtype="Int64"),
        "flag": rng.random(n) < 0.5,
        "text": rng.choice(["a", "bb", "ccc", None], n),
        "cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], n),
                              categories=["lo", "mid", "hi"], ordered=True),
        "when": pd.date_range("2024-03-01", periods=n, freq="h", tz="Europe/Paris"),
        "naive": pd.date_range("2024-03-01", periods=n, freq="min"),
        "span": pd.to_timedelta(rng.integers(0, 1000, n), unit="s"),
        "nan_floats": np.where(rng.random(n) < 0.2, np.nan, rng.standard_normal(n)),
    }, index=pd.Index(np.arange(n) * 3, name="row_id"))
    return {
        "frame": frame,
        "multiindex": frame[["f64", "i64"]].set_index([frame["text"].fillna("-"), frame.index]),
        "int_columns": pd.DataFrame(np.arange(12).reshape(4, 3), columns=[10, 20, 30]),
        "empty": frame.iloc[:0],
        "series": frame["f64"].rename("target"),
        "unnamed_series": pd.Series([1, 2, 3]),
        "cat_series": frame["cat"],
        "array_2d": rng.standard_normal((50, 4)),
        "array_3d": np.arange(60, dtype=np.int32).reshape(5, 3, 4),
        "array_1d_bool": rng.random(33) < 0.5,
        "array_str": np.array(["x", "yy", "zzz"]),
        "array_dt": np.arange(5).astype("datetime64[ms]"),
        "array_empty": np.zeros((0, 3)),
        "scalar_array": np.array(3.5),
        "fortran": np.asfortranarray(rng.standard_normal((6, 5))),
    }


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_every_supported_data_type_round_trips_exactly(project: Project, fitted: Any) -> None:
    data = _frames()
    version = project.commit(fitted, data, name="clf")
    back = project.load_data(version.ref)
    assert set(back) == set(data)
    for key, value in data.items():
        _assert_same(value, back[key])


def test_models_round_trip_with_skops_and_predict_the_same(project: Project, iris: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = iris
    for model in (RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
                  make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3)).fit(X, y),
                  OneHotEncoder().fit(pd.DataFrame({"c": ["a", "b"]}))):
        version = project.commit(model, {"X": X}, name="m")
        assert version.model.format == "skops" and version.model.trusted
        loaded = project.load(version.ref)
        assert type(loaded) is type(model)
        if hasattr(model, "predict"):
            np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


class Custom:
    """A model skops does not know: falls back to joblib, marked untrusted."""

    def __init__(self, weight: float) -> None:
        self.weight = weight


def test_unknown_models_fall_back_to_joblib_and_need_trust(project: Project) -> None:
    with pytest.warns(PickleFallbackWarning):
        version = project.commit(Custom(2.5), None, name="custom")
    assert version.model.format == "joblib" and not version.model.trusted
    with pytest.raises(UntrustedModelError) as info:
        project.load(version.ref)
    assert "trust=True" in str(info.value)
    assert project.load(version.ref, trust=True).weight == 2.5
    with pytest.raises(InvalidInputError):
        project.load(version.ref, trust="yes")  # type: ignore[arg-type]


def test_versions_are_numbered_and_resolved(project: Project, fitted: Any, iris: Any) -> None:
    X, y = iris
    refs = [project.commit(fitted, {"X_train": X, "y_train": y}, name="clf",
                           message=f"v{i}").ref for i in range(3)]
    assert refs == ["clf@1", "clf@2", "clf@3"]
    assert project.show("clf").version == 3
    assert project.show("clf@latest").message == "v2"
    assert [v.ref for v in project.versions("clf")] == ["clf@3", "clf@2", "clf@1"]
    project.set_alias("clf@2", "production")
    assert project.show("clf@production").version == 2
    assert project.show("clf@2").aliases == ["production"]
    [summary] = project.models()
    assert (summary.name, summary.versions, summary.latest) == ("clf", 3, 3)
    assert summary.aliases == {"production": 2}


def test_missing_things_raise_clear_not_found_errors(project: Project, fitted: Any) -> None:
    project.commit(fitted, None, name="clf")
    with pytest.raises(ModelNotFoundError, match="Model 'nope' not found"):
        project.show("nope@1")
    with pytest.raises(VersionNotFoundError, match="the latest is clf@1") as info:
        project.show("clf@7")
    assert isinstance(info.value, LookupError)
    with pytest.raises(VersionNotFoundError):
        project.show("clf@staging")


def test_recommit_of_same_data_stores_no_new_data(project: Project, fitted: Any,
                                                  iris: Any) -> None:
    X, y = iris
    first = project.commit(fitted, {"X_train": X, "y_train": y}, name="clf")
    again = project.commit(fitted, {"X_train": X, "y_train": y}, name="clf")
    assert first.stored.new_bytes > 0
    assert again.stored.new_bytes == 0 and again.stored.new_objects == 0
    assert again.stored.dedup_bytes == first.stored.new_bytes
    assert again.model.digest == first.model.digest  # skops output made reproducible
    assert again.data["X_train"].digest == first.data["X_train"].digest


def test_commit_records_signature_params_lineage(project: Project, fitted: Any,
                                                 iris: Any) -> None:
    X, y = iris
    version = project.commit(fitted, {"X_train": X, "y_train": y}, name="clf", message="m",
                             metrics={"accuracy": 0.97, "n": 3})
    names = [i["name"] for i in version.signature["inputs"]]
    assert names == list(X.columns)
    assert {i["dtype"] for i in version.signature["inputs"]} == {"float64"}
    assert version.signature["outputs"] == [{"name": "target", "dtype": "int64"}]
    assert len(version.signature["example"]["rows"]) == 5
    assert version.params["max_iter"] == 500
    assert version.metrics == {"accuracy": 0.97, "n": 3}
    lineage = version.lineage
    assert lineage["python"] and lineage["packages"]["scikit-learn"]
    assert lineage["user"] and lineage["host"] and lineage["time"]
    stats = version.data["X_train"].stats["sepal length (cm)"]
    assert stats["min"] == pytest.approx(X["sepal length (cm)"].min())
    assert stats["mean"] == pytest.approx(X["sepal length (cm)"].mean())
    assert stats["std"] == pytest.approx(X["sepal length (cm)"].std(ddof=0))


def test_git_state_is_recorded(make_project: Any, fitted: Any) -> None:
    import subprocess

    project = make_project()
    root = project.settings.root
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(root)], check=True)
    (root / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "-C", str(root), "add", "train.py"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qm", "init"], check=True)
    clean = project.commit(fitted, None, name="clf").lineage["git"]
    assert clean["branch"] == "trunk" and len(clean["commit"]) == 40 and not clean["dirty"]
    (root / "train.py").write_text("print(2)\n")
    assert project.commit(fitted, None, name="clf").lineage["git"]["dirty"]


def test_module_api_infers_names_from_variables(in_project: Project, fitted: Any,
                                                iris: Any) -> None:
    X_train, _y_train = iris
    clf = fitted
    version = nbmci.commit(clf, data=X_train, message="m")
    assert version.ref == "clf@1"
    assert list(version.data) == ["X_train"]
    assert nbmci.load("clf@1").get_params() == fitted.get_params()
    _assert_same(nbmci.load_data("clf@1")["X_train"], X_train)
    assert [v.ref for v in nbmci.versions("clf")] == ["clf@1"]
    assert [m.name for m in nbmci.models()] == ["clf"]


def test_diff_reports_params_metrics_and_data(project: Project, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    a = project.commit(LogisticRegression(C=1.0, max_iter=300).fit(X, y), {"X": X, "y": y},
                       name="clf", metrics={"acc": 0.9})
    X2 = X.assign(extra=1.0)
    b = project.commit(LogisticRegression(C=0.5, max_iter=300).fit(X2, y),
                       {"X": X2, "y": y.iloc[:140]}, name="clf", metrics={"acc": 0.95})
    result = project.diff(a.ref, b.ref)
    changed = {c.key: (c.a, c.b) for c in result.params if c.status == "changed"}
    assert changed == {"C": (1.0, 0.5)}
    assert [(c.key, c.status) for c in result.metrics] == [("acc", "changed")]
    by_key = {d.key: d for d in result.data}
    assert by_key["X"].status == "changed"
    assert ("extra", "added") in [(c.key, c.status) for c in by_key["X"].columns]
    assert by_key["y"].rows == (150, 140)
    assert any(c.key == "input extra" and c.status == "added" for c in result.signature)
    assert result.changed
    json.dumps(result.to_dict())  # JSON-able for --json
    assert not project.diff(a.ref, a.ref).changed


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "../x"}, InvalidInputError),
        ({"name": "Bad Name"}, InvalidInputError),
        ({"message": 5}, InvalidInputError),
        ({"metrics": {"acc": "high"}}, InvalidInputError),
        ({"metrics": {"acc": float("nan")}}, InvalidInputError),
        ({"metrics": ["acc"]}, InvalidInputError),
        ({"params": "x=1"}, InvalidInputError),
        ({"data": {"../x": np.zeros(3)}}, InvalidInputError),
        ({"data": {"X": [1, 2, 3]}}, UnsupportedDataError),
        ({"data": {"X": np.array([object(), 1])}}, UnsupportedDataError),
        ({"data": {"X": pd.DataFrame({"a": [1, "x"]})}}, UnsupportedDataError),
        ({"data": {"X": pd.DataFrame([[1, 2]], columns=["a", "a"])}}, UnsupportedDataError),
        ({"example": {"a": 1}}, UnsupportedDataError),
        ({"example": []}, UnsupportedDataError),
        ({"example": pd.DataFrame({"a": []})}, InvalidInputError),
    ],
)
def test_bad_commit_input_is_refused_and_nothing_is_written(
    project: Project, fitted: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    arguments = {"name": "clf", **kwargs}
    with pytest.raises(error) as info:
        project.commit(fitted, **arguments)
    assert "\n" not in str(info.value)
    assert project.models() == []
    assert project.registry.version_digests() == {}


def test_commit_without_a_knowable_name_asks_for_one(project: Project) -> None:
    from sklearn.linear_model import LinearRegression

    with pytest.raises(InvalidInputError, match="name="):
        project.commit(LinearRegression())  # a temporary: no variable holds it


def test_none_model_is_refused(project: Project) -> None:
    with pytest.raises(InvalidInputError, match="no model"):
        project.commit(None, name="clf")


def test_checkout_writes_model_parquet_and_metadata(project: Project, fitted: Any, iris: Any,
                                                    tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    import skops.io as sio

    X, y = iris
    project.commit(fitted, {"X_train": X, "y_train": y, "arr": np.eye(3)}, name="clf")
    result = project.checkout("clf@1", tmp_path / "out")
    out = Path(result.directory)
    assert sorted(result.files) == ["data/X_train.parquet", "data/arr.parquet",
                                    "data/y_train.parquet", "model.skops", "version.json"]
    assert pq.read_table(out / "data/X_train.parquet").num_rows == 150
    pd.testing.assert_frame_equal(pd.read_parquet(out / "data/X_train.parquet"), X)
    model = sio.load(out / "model.skops", trusted=sio.get_untrusted_types(file=out / "model.skops"))
    assert model.get_params() == fitted.get_params()
    assert json.loads((out / "version.json").read_text())["ref"] == "clf@1"
    with pytest.raises(nbmci.errors.ConflictError, match="not empty"):
        project.checkout("clf@1", out)


def test_checkout_refuses_a_symlinked_output(project: Project, fitted: Any,
                                             tmp_path: Path) -> None:
    project.commit(fitted, None, name="clf")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="symlink"):
        project.checkout("clf@1", tmp_path / "link")
    assert not any(outside.iterdir())


def test_progress_reports_bytes(project: Project, fitted: Any) -> None:
    seen: list[tuple[int, int]] = []
    frame = pd.DataFrame({"a": np.arange(100_000.0)})
    project.commit(fitted, {"X": frame}, name="clf", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] > 800_000
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(seen))


def test_import_nbmci_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, nbmci; heavy = [m for m in ('pandas', 'pyarrow', 'sqlalchemy', "
            "'sklearn', 'IPython') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_warnings_do_not_leak_from_trusted_commits(project: Project, fitted: Any,
                                                  iris: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project.commit(fitted, None, name="clf", example=iris[0].head())


def test_diff_shows_schema_changes(project: Project) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    def fitted_on(frame: pd.DataFrame) -> Any:
        return make_pipeline(ColumnTransformer(
            [("c", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"),
            HistGradientBoostingClassifier(max_iter=5)).fit(frame, [0, 1] * (len(frame) // 2))

    before = pd.DataFrame({"plan": pd.Categorical(["a", "b"] * 4), "x": np.arange(8.0)})
    after = before.assign(plan=pd.Categorical(["a", "b", "c", "a"] * 2),
                          x=before["x"].where(before["x"] > 1))  # now with missing values
    a = project.commit(fitted_on(before), {"X": before}, name="m")
    b = project.commit(fitted_on(after), {"X": after}, name="m")
    changes = {c.key: (c.a, c.b) for c in project.diff(a.ref, b.ref).signature
               if c.status == "changed"}
    assert changes == {"input plan": ("category (a, b)", "category (a, b, c)"),
                       "input x": ("float", "float, may be missing")}


def test_example_rows_the_model_cannot_take_make_it_not_servable(project: Project,
                                                                 fitted: Any) -> None:
    from nbmci.errors import NotServableWarning

    with pytest.warns(NotServableWarning, match="its example rows are not rows it takes|fails"):
        version = project.commit(fitted, None, name="clf",
                                 example=pd.DataFrame({"other": [1.0]}))
    assert version.servability.status == "not servable"


def test_long_name_lists_end_with_a_count_not_a_silent_cut() -> None:
    from nbmci.errors import ModelNotFoundError

    few = ModelNotFoundError("nope", [f"m{i}" for i in range(12)]).message
    assert "m0" in few and "m11" in few and "more" not in few
    many = ModelNotFoundError("nope", [f"m{i}" for i in range(25)]).message
    assert "m19 and 5 more." in many and "m20" not in many
