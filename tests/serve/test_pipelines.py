"""The compiled ColumnTransformer path gives the pipeline's own answers, or is not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from nbmci.serve.pipelines import compile_pipeline
from nbmci.snapshot.estimators import methods, serving_schema
from nbmci.snapshot.schema import infer_schema

CITIES = ["Oslo", "Lima", "Cairo", "Delhi"]


def frame(rows: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cities = CITIES + (["Quito"] if unseen else [])
    out = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.integers(0, 50, rows),
                        "city": pd.array(rng.choice(cities, rows), dtype="str"),
                        "tier": pd.Categorical(rng.choice(["gold", "silver"], rows))})
    out.loc[::7, "a"] = np.nan
    return out


def fit(transformers: list[Any], final: Any, **options: Any) -> Any:
    X = frame(400, 0)
    y = np.where(X["b"] > 25, "high", "low")
    return make_pipeline(ColumnTransformer(transformers, **options), final).fit(X, y)


IMPUTED = make_pipeline(SimpleImputer(), StandardScaler())
COMPILED = {
    "scaler and one-hot": ([("n", IMPUTED, ["a", "b"]),
                            ("c", OneHotEncoder(handle_unknown="ignore"), ["city", "tier"])],
                           LogisticRegression(max_iter=500), {}),
    "min-max, passthrough, sparse": ([("n", make_pipeline(SimpleImputer(strategy="median"),
                                                           MinMaxScaler()), ["a"]),
                                      ("c", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                                     LogisticRegression(max_iter=500),
                                     {"remainder": "drop", "sparse_threshold": 1.0}),
    "remainder passed through into a forest": (
        [("c", OneHotEncoder(handle_unknown="ignore"), ["city", "tier"]),
         ("n", SimpleImputer(), ["a"])], RandomForestClassifier(20, random_state=0),
        {"remainder": "passthrough"}),
    "gradient boosting after": ([("n", SimpleImputer(), ["a", "b"]),
                                 ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                  ["city"])], HistGradientBoostingClassifier(max_iter=10), {}),
}


@pytest.mark.parametrize("case", sorted(COMPILED))
def test_compiled_answers_equal_the_pipeline_on_new_rows(case: str) -> None:
    transformers, final, options = COMPILED[case]
    model = fit(transformers, final, **options)
    schema = serving_schema(infer_schema(frame(400, 0)), model)
    example = schema.decode_records(_records(frame(5, 1)), "example")
    compiled = compile_pipeline(model, schema, example, methods(model))
    assert set(compiled) == {"predict", "predict_proba", "decision_function"} & set(
        methods(model))
    rows = frame(300, 2, unseen=True)  # Quito: never seen, ignored by the encoder
    batch = schema.decode_records(_records(rows), "rows")
    assert compiled["predict"](batch).tolist() == model.predict(rows).tolist()
    np.testing.assert_allclose(compiled["predict_proba"](batch), model.predict_proba(rows),
                               rtol=1e-12)


@pytest.mark.parametrize("transformers", [
    [("n", StandardScaler(), ["a", "b"]), ("c", OrdinalEncoder(), ["city"])],
    [("f", FunctionTransformer(np.abs), ["b"])],
], ids=["ordinal encoder", "function transformer"])
def test_other_transformers_keep_the_models_own_path(transformers: list[Any]) -> None:
    X = frame(200, 0).dropna()
    model = make_pipeline(ColumnTransformer(transformers), Ridge()).fit(X, X["b"])
    schema = serving_schema(infer_schema(X), model)
    example = schema.decode_records(_records(X.head()), "example")
    assert compile_pipeline(model, schema, example, ["predict"]) == {}


def test_an_encoder_without_ignore_still_refuses_unseen_values() -> None:
    model = fit([("c", OneHotEncoder(), ["city", "tier"])], LogisticRegression())
    schema = serving_schema(infer_schema(frame(400, 0)), model)
    compiled = compile_pipeline(model, schema, schema.decode_records(
        _records(frame(5, 1)), "example"), ["predict"])
    from dataclasses import replace  # past the request checks (which refuse it first)

    loose = schema.with_columns([replace(c, known=None) for c in schema.columns])
    unseen = loose.decode_records(_records(frame(40, 3, unseen=True)), "rows")
    with pytest.raises(ValueError, match="unknown categories in column 'city'"):
        compiled["predict"](unseen)


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return rows.astype(object).where(rows.notna(), None).to_dict("records")
