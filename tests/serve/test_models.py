"""Everyday model shapes committed, published and served in both protocols: strings,
categories, dates, text, missing values, probabilities, string labels, several outputs,
LightGBM, and code from a module beside the notebook."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from nbmci.api import Project
from nbmci.config import load_settings
from nbmci.serve.app import create_app
from nbmci.serve.settings import ServeSettings
from tests.serve.conftest import run_server, wait_for

DATES = '''\
import numpy as np
import pandas as pd


def date_parts(X):
    """Day of week, month and hour of each datetime column."""
    parts = {}
    for name in X.columns:
        column = pd.to_datetime(X[name])
        parts[f"{name}_dow"] = column.dt.day_of_week
        parts[f"{name}_month"] = column.dt.month
        parts[f"{name}_hour"] = column.dt.hour
    return pd.DataFrame(parts, index=X.index).to_numpy(dtype=np.float64)
'''
TEXTS = ["great value, works well", "broke after a week", "fine for the price",
         "terrible support", "love it", "does the job"]


def training_frame(rows: int = 240) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, rows),
        "income": rng.normal(50, 12, rows),
        "plan": pd.array(rng.choice(["basic", "pro", "team"], rows), dtype="str"),
        "region": pd.Categorical(rng.choice(["north", "south", "west"], rows)),
        "signup": pd.date_range("2024-01-01", periods=rows, freq="7h", tz="Europe/Paris"),
        "visits": pd.array(rng.integers(0, 9, rows), dtype="Int64"),
    })
    frame.loc[::9, "visits"] = pd.NA
    churn = np.where(frame["income"] + rng.normal(0, 8, rows) > 50, "stay", "churn")
    return frame, pd.Series(churn, name="churned")


def build(root: Path) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """``{name: (model, the frame its requests are, the data committed)}``."""
    X, y = training_frame()
    sys.path.insert(0, str(root))  # the module beside the notebook
    try:
        import dates
    finally:
        sys.path.remove(str(root))
    numeric = X[["age", "income"]].astype(float)
    gaps = numeric.copy()
    gaps.loc[::5, "income"] = np.nan
    texts = pd.Series(TEXTS * 40, name="review")
    moods = pd.Series(["pos", "neg", "pos", "neg", "pos", "pos"] * 40, name="mood")
    lgbm = pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    frames = {
        "onehot": X[["age", "income", "plan", "region"]],
        "categorical": X[["age", "income", "region"]],
        "imputed": gaps,
        "dated": X[["signup", "plan", "visits"]],
        "boosted": X[["age", "income", "plan"]],
        "several": numeric,
        "xgboost": numeric,
        "xgbpiped": X[["age", "income", "plan"]],
    }
    models = {
        "onehot": make_pipeline(ColumnTransformer([
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(), ["plan", "region"])]),
            LogisticRegression(max_iter=500)).fit(frames["onehot"], y),
        "categorical": HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=20).fit(frames["categorical"], y),
        "imputed": make_pipeline(SimpleImputer(), Ridge()).fit(gaps, X["age"]),
        "dated": make_pipeline(ColumnTransformer([
            ("when", FunctionTransformer(dates.date_parts), ["signup"]),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ("visits", SimpleImputer(), ["visits"])]),
            LogisticRegression(max_iter=500)).fit(frames["dated"], y),
        "boosted": make_pipeline(ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])],
            remainder="passthrough"), lgbm.LGBMClassifier(n_estimators=15, verbose=-1)
        ).fit(frames["boosted"], y),
        "several": RandomForestRegressor(8, random_state=0).fit(
            numeric, np.column_stack([numeric["income"], numeric["age"] * 2])),
        "text": make_pipeline(TfidfVectorizer(), LinearSVC()).fit(texts, moods),
        "xgboost": xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(numeric, X["age"]),
        "xgbpiped": make_pipeline(ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])],
            remainder="passthrough"), xgb.XGBClassifier(n_estimators=10, max_depth=3)
        ).fit(frames["xgbpiped"], (y == "stay").astype(int)),
    }
    data = {name: {"X_train": frames[name], "y_train": y} for name in frames}
    data["imputed"] = {"X_train": gaps, "y_train": X["age"]}
    data["several"] = {"X_train": numeric}
    data["xgboost"] = {"X_train": numeric, "y_train": X["age"]}
    data["xgbpiped"] = {"X_train": frames["xgbpiped"], "y_train": (y == "stay").astype(int)}
    data["text"] = {"reviews": texts, "mood": moods}
    frames["text"] = texts
    return {name: (models[name], frames[name], data[name]) for name in models}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any, Any]]:
    root = tmp_path_factory.mktemp("shapes")
    (root / ".nbmci").mkdir(mode=0o700)
    (root / "dates.py").write_text(DATES, encoding="utf-8")
    project = Project(load_settings(root))
    cases = build(root)
    for name, (model, _, data) in cases.items():
        project.commit(model, data, name=name)
        project.publish(f"{name}@1", force=True)  # no CI here; servability is still checked
    (root / "dates.py").unlink()
    del sys.modules["dates"]  # the server must load the copy stored with the version
    with run_server(create_app(ServeSettings(poll_interval=0.1), project=project)) as running:
        host = running.state.host
        wait_for(lambda: set(host.live) == set(cases)
                 or any(host.state(n).failed for n in cases), timeout=60)
        assert {n: host.state(n).failed for n in cases} == {n: {} for n in cases}
        with running.client() as client:
            yield project, cases, client, host
    project.close()


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client writes them: ISO times, null for missing values."""
    out = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        out.append({k: v.isoformat() if isinstance(v, pd.Timestamp) else v
                    for k, v in row.items()})
    return out


def _rtol(expected: Any) -> float:
    return 1e-6 if np.asarray(expected).dtype == np.float32 else 1e-9


FRAME_MODELS = ["onehot", "categorical", "imputed", "dated", "boosted", "several", "xgboost",
                "xgbpiped"]


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_mlflow_records_and_split_answer_what_the_model_does(served: Any, name: str) -> None:
    _, cases, client, _ = served
    model, frame, _ = cases[name]
    rows = frame.iloc[[0, 9, 18, 27, 5]]
    expected = model.predict(rows)
    listed = records(rows)
    split = {"columns": list(rows.columns), "data": [list(r.values()) for r in listed]}
    for body in ({"dataframe_records": listed}, {"dataframe_split": split},
                 {"instances": listed}):
        answer = client.post(f"/invocations?model={name}", json=body)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
        if np.asarray(expected).dtype.kind == "f":  # float32 (XGBoost) travels as float32
            np.testing.assert_allclose(got, expected, rtol=_rtol(expected))
        else:
            assert got == np.asarray(expected).tolist()


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_v2_tensor_per_column_answers_what_the_model_does(served: Any, name: str) -> None:
    _, cases, client, _ = served
    model, frame, _ = cases[name]
    rows = frame.iloc[[1, 2, 9]]
    meta = client.get(f"/v2/models/{name}").json()
    assert [i["name"] for i in meta["inputs"]] == list(frame.columns)
    listed = records(rows)
    inputs = [{"name": i["name"], "datatype": i["datatype"], "shape": [len(rows)],
               "data": [r[i["name"]] for r in listed]} for i in meta["inputs"]]
    answer = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs})
    assert answer.status_code == 200, answer.text
    [output] = answer.json()["outputs"]
    expected = np.asarray(model.predict(rows))
    assert output["shape"] == list(expected.shape)
    assert output["datatype"] == meta["outputs"][0]["datatype"]
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(np.reshape(output["data"], expected.shape), expected,
                                   rtol=_rtol(expected))
    else:
        assert output["data"] == expected.ravel().tolist()


def test_csv_with_strings_dates_and_empty_cells(served: Any) -> None:
    _, cases, client, _ = served
    model, frame, _ = cases["dated"]
    rows = frame.iloc[[0, 9, 4]]  # row 9 has no visits
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(rows.columns)
    for record in records(rows):
        writer.writerow(["" if v is None else v for v in record.values()])
    answer = client.post("/invocations?model=dated", content=text.getvalue(),
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == model.predict(rows).tolist()


def test_text_model_takes_one_text_per_row(served: Any) -> None:
    _, cases, client, _ = served
    model, texts, _ = cases["text"]
    expected = model.predict(texts[:3]).tolist()
    for body in ({"inputs": list(texts[:3])}, {"instances": list(texts[:3])},
                 {"dataframe_split": {"columns": ["review"], "data": [[t] for t in texts[:3]]}}):
        answer = client.post("/invocations?model=text", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected
    v2 = client.post("/v2/models/text/infer", json={"inputs": [
        {"name": "review", "datatype": "BYTES", "shape": [3], "data": list(texts[:3])}]})
    assert v2.json()["outputs"][0]["data"] == expected


def test_probabilities_with_class_labels_in_both_protocols(served: Any) -> None:
    _, cases, client, _ = served
    model, frame, _ = cases["onehot"]
    rows = frame.iloc[:4]
    expected = model.predict_proba(rows)
    mlflow = client.post("/invocations?model=onehot", json={
        "dataframe_records": records(rows), "params": {"method": "predict_proba"}})
    np.testing.assert_allclose(mlflow.json()["predictions"], expected)
    meta = client.get("/v2/models/onehot").json()
    assert meta["parameters"]["classes"] == ["churn", "stay"]
    by_name = {o["name"]: o for o in meta["outputs"]}
    assert by_name["churned"]["datatype"] == "BYTES"
    assert by_name["predict_proba"] == {"name": "predict_proba", "datatype": "FP64",
                                        "shape": [-1, 2],
                                        "parameters": {"method": "predict_proba"}}
    inputs = [{"name": c, "datatype": i["datatype"], "shape": [4],
               "data": [r[c] for r in records(rows)]}
              for c, i in zip(frame.columns, meta["inputs"], strict=True)]
    for extra in ({"outputs": [{"name": "predict_proba"}, {"name": "churned"}]},
                  {"parameters": {"method": "predict_proba"}}):
        answer = client.post("/v2/models/onehot/infer", json={"inputs": inputs, **extra})
        outputs = {o["name"]: o for o in answer.json()["outputs"]}
        assert outputs["predict_proba"]["shape"] == [4, 2]
        np.testing.assert_allclose(np.reshape(outputs["predict_proba"]["data"], (4, 2)),
                                   expected)
    assert outputs.keys() == {"predict_proba"}


def test_an_unsupported_method_lists_the_ones_the_model_has(served: Any) -> None:
    _, cases, client, _ = served
    _, frame, _ = cases["imputed"]
    answer = client.post("/invocations?model=imputed", json={
        "dataframe_records": records(frame.iloc[:1]), "params": {"method": "predict_proba"}})
    assert answer.status_code == 422
    assert "imputed@1 answers predict." in answer.json()["error"]


def test_tritonclient_with_string_date_and_nullable_columns(served: Any) -> None:
    tritonhttp = pytest.importorskip("tritonclient.http")
    _, cases, client, _ = served
    model, frame, _ = cases["dated"]
    rows = frame.iloc[[3, 9]]
    url = str(client.base_url).removeprefix("http://").rstrip("/")
    triton = tritonhttp.InferenceServerClient(url=url)
    try:
        meta = triton.get_model_metadata("dated")
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            ("signup", "BYTES"), ("plan", "BYTES"), ("visits", "INT64")]
        signup = tritonhttp.InferInput("signup", [2], "BYTES")
        signup.set_data_from_numpy(np.array([t.isoformat() for t in rows["signup"]],
                                            dtype=object))
        plan = tritonhttp.InferInput("plan", [2], "BYTES")
        plan.set_data_from_numpy(rows["plan"].to_numpy(dtype=object))
        visits = tritonhttp.InferInput("visits", [2], "INT64")
        visits.set_data_from_numpy(np.array([3, 0], dtype=np.int64))
        result = triton.infer("dated", [signup, plan, visits], outputs=[
            tritonhttp.InferRequestedOutput("churned"),
            tritonhttp.InferRequestedOutput("predict_proba", binary_data=False)])
        sent = rows.assign(visits=pd.array([3, 0], dtype="Int64"))
        assert [b.decode() for b in result.as_numpy("churned")] == model.predict(sent).tolist()
        np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(sent))
    finally:
        triton.close()


def test_each_version_stored_what_serving_needs(served: Any) -> None:
    project, cases, _, _ = served
    dated = project.show("dated@1")
    assert dated.signature["code"]["modules"] == ["dates"]
    assert dated.schema.describe() == {
        "signup": "datetime (Europe/Paris)", "plan": "string [str]",
        "visits": "nullable integer [Int64], may be missing"}
    assert project.show("categorical@1").schema.describe()["region"] == \
        "category (north, south, west)"
    assert project.show("text@1").schema.kind == "series"
    for name in ("boosted", "xgboost", "xgbpiped"):  # safe format, their types approved
        model = project.show(f"{name}@1").model
        assert model.format == "skops" and model.trusted
        assert any(t.startswith(("lightgbm.", "xgboost.")) for t in model.trusted_types)
    for name in cases:
        assert project.checks.ensure(project.show(f"{name}@1")).servable


# -- bad input: 400/422 naming the column, the row and the value, never a 5xx -----------------


def _error(answer: Any, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize(("name", "change", "words"), [
    ("onehot", {"plan": "gold"}, ["row 1, column 'plan': \"gold\" is a value the model's "
                                  "encoder never saw", 'Known values: "basic", "pro", "team".']),
    ("categorical", {"region": "east"}, ["column 'region': \"east\" is not a category",
                                         '"north", "south", "west"']),
    ("dated", {"signup": "yesterday"}, ["column 'signup': \"yesterday\" is not an ISO 8601"]),
    ("onehot", {"plan": 3}, ["column 'plan': 3 is not a string"]),
    ("onehot", {"age": "30"}, ["column 'age': \"30\" is not a number"]),
    ("onehot", {"income": None}, ["column 'income': null is missing"]),
    ("onehot", {"age": 30.5}, ["column 'age': 30.5 is not a whole number"]),
    ("dated", {"visits": True}, ["column 'visits': true is not a number"]),
])
def test_wrong_values_are_named(served: Any, name: str, change: dict[str, Any],
                                words: list[str]) -> None:
    _, cases, client, _ = served
    rows = records(cases[name][1].iloc[:2])
    rows[1].update(change)
    body = _error(client.post(f"/invocations?model={name}", json={"dataframe_records": rows}))
    text = f"{body['error']} {body['hint']}"
    for expected in words:
        assert expected in text
    column = next(iter(change))
    assert (body["field"], body["column"], body["row"]) == ("dataframe_records", column, 1)
    assert body["value"] == change[column]


def test_missing_and_extra_columns_are_all_listed(served: Any) -> None:
    _, cases, client, _ = served
    row = records(cases["onehot"][1].iloc[:1])[0]
    del row["plan"], row["region"]
    row |= {"colour": "red", "size": 3}
    body = _error(client.post("/invocations?model=onehot", json={"dataframe_records": [row]}))
    assert "missing plan, region; unknown colour, size" in body["error"]
    split = {"columns": [f"c{i}" for i in range(30)], "data": [list(range(30))]}
    body = _error(client.post("/invocations?model=onehot", json={"dataframe_split": split}))
    assert "unknown c0, c1" in body["error"] and "and 10 more" in body["error"]


def test_v2_type_and_encoding_errors(served: Any) -> None:
    _, _, client, _ = served
    meta = client.get("/v2/models/text").json()
    assert meta["inputs"] == [{"name": "review", "datatype": "BYTES", "shape": [-1],
                               "parameters": {"type": "string", "dtype": "str",
                                              "nullable": False}}]
    wrong = client.post("/v2/models/text/infer", json={"inputs": [
        {"name": "review", "datatype": "FP64", "shape": [1], "data": [1.0]}]})
    assert "'review' takes BYTES" in _error(wrong)["error"]
    bad = b"\xff\xfe"
    header = ('{"inputs": [{"name": "review", "datatype": "BYTES", "shape": [1], '
              f'"parameters": {{"binary_data_size": {4 + len(bad)}}}}}]}}').encode()
    answer = client.post("/v2/models/text/infer", content=header + len(bad).to_bytes(4, "little")
                         + bad, headers={"inference-header-content-length": str(len(header)),
                                         "content-type": "application/json"})
    assert "is not UTF-8 text" in _error(answer)["error"]


HOSTILE_VALUES = [None, 0, -1, 2.5, 1e308, -1e308, "", "x", "2024-13-45T99:00", True, [],
                  {"a": 1}, "\x00", "é" * 300, 2**70]


def test_no_value_in_any_column_causes_a_5xx(served: Any) -> None:
    _, cases, client, _ = served
    for name in [*FRAME_MODELS, "text"]:
        frame = cases[name][1]
        if isinstance(frame, pd.Series):
            for value in HOSTILE_VALUES:
                answer = client.post(f"/invocations?model={name}", json={"inputs": [value]})
                assert answer.status_code < 500, (name, value, answer.text)
            continue
        for column in frame.columns:
            for value in HOSTILE_VALUES:
                row = records(frame.iloc[:1])[0] | {column: value}
                answer = client.post(f"/invocations?model={name}",
                                     json={"dataframe_records": [row]})
                assert answer.status_code < 500, (name, column, value, answer.text)
                assert answer.status_code in (200, 400, 422)


def test_hostile_values_are_refused_before_the_model_is_called(served: Any) -> None:
    """Checked against the schema and the encoders, not left to fail inside the model."""
    _, cases, client, _ = served
    frame = cases["onehot"][1]
    for column in ("plan", "region"):
        for value in HOSTILE_VALUES:
            row = records(frame.iloc[:1])[0] | {column: value}
            answer = client.post("/invocations?model=onehot", json={"dataframe_records": [row]})
            assert answer.json().get("type") != "PredictFailedError", (column, value)


def test_mixed_and_text_pipelines_are_served_through_the_compiled_path(served: Any) -> None:
    _, _, _, host = served
    for name in ("onehot", "dated", "text", "imputed"):
        live = host.get(name)
        compiled = name in ("onehot", "text")
        assert bool(live.compiled or live.shortcut) == compiled, name
        assert live.inline or not compiled  # compiled: fast enough for the event loop
