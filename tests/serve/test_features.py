"""Request matrices against a model's signature: which missing and infinite values get through."""

from __future__ import annotations

import numpy as np
import pytest

from nbmci.serve.live import LiveModel
from nbmci.serve.protocols.features import InputMismatchError, check_matrix
from tests.serve.conftest import numeric_live


def _live(allow_nan: bool) -> LiveModel:
    return numeric_live(None, ("a", "b"), missing_ok=allow_nan)  # type: ignore[no-any-return]


def test_a_model_that_takes_nan_gets_nan_but_never_infinity() -> None:
    live = _live(allow_nan=True)
    with_nan = np.array([[np.nan, 1.0], [2.0, np.nan]])
    assert check_matrix(live, with_nan, "x") is with_nan
    with pytest.raises(InputMismatchError, match=r"row 1, column 'b' is infinite"):
        check_matrix(live, np.array([[np.nan, 1.0], [2.0, -np.inf]]), "x")  # after a NaN


@pytest.mark.parametrize(("bad", "words"), [(np.nan, "missing"), (np.inf, "infinite")])
def test_a_model_that_cannot_take_nan_refuses_the_first_bad_value(bad: float,
                                                                  words: str) -> None:
    matrix = np.array([[1.0, 2.0], [3.0, bad]])
    with pytest.raises(InputMismatchError, match=rf"row 1, column 'b' is {words}"):
        check_matrix(_live(allow_nan=False), matrix, "x")


def test_huge_finite_values_pass() -> None:
    matrix = np.full((3, 2), np.finfo(np.float64).max)  # their sum overflows; each is finite
    assert check_matrix(_live(allow_nan=False), matrix, "x") is matrix


def test_opposite_infinities_are_refused() -> None:
    with pytest.raises(InputMismatchError, match=r"row 0, column 'a' is infinite"):
        check_matrix(_live(allow_nan=False), np.array([[np.inf, -np.inf]]), "x")
