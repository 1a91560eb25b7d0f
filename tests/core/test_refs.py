"""Names and references: the rule, and hostile input refused before anything is touched."""

from __future__ import annotations

import pytest

from nbmci.errors import InvalidInputError, InvalidNameError, InvalidRefError, NbmciError
from nbmci.refs import Ref, validate_alias, validate_name

HOSTILE = [
    "../x", "..\\x", "/etc/passwd", "C:\\x", "%2e%2e%2f", "%252e%252e%252f", "a#/../../",
    "a?x=../", "a\x00b", "a" * 65, "", "A", "a b", "a/b", ".hidden", "-x", "clf\n",
    "\u0441lf",  # Cyrillic 'с' that looks like a Latin 'c'
    "ｃlf",  # full-width
]


@pytest.mark.parametrize("name", ["clf", "a", "x1", "my-model.v2_final", "a" * 64, "0abc"])
def test_valid_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name)
    assert isinstance(info.value, ValueError)  # callers catching ValueError still work
    assert "not a valid model name" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 3, b"clf", ["clf"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(value)
    with pytest.raises(InvalidRefError):
        Ref.parse(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clf", Ref("clf", alias="latest")),
        ("clf@3", Ref("clf", version=3)),
        ("clf@latest", Ref("clf", alias="latest")),
        ("clf@production", Ref("clf", alias="production")),
    ],
)
def test_refs_parse(text: str, expected: Ref) -> None:
    assert Ref.parse(text) == expected


@pytest.mark.parametrize("text", ["clf@0", "clf@-1", "clf@", "@3", "clf@3@4", "clf@../x",
                                  "../x@1", "clf@9999999999999", "clf@Prod", "x" * 300])
def test_bad_refs_are_refused(text: str) -> None:
    with pytest.raises(InvalidRefError) as info:
        Ref.parse(text)
    assert isinstance(info.value, InvalidInputError)


@pytest.mark.parametrize("alias", ["12", "latest", "../x", "Prod"])
def test_bad_aliases_are_refused(alias: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_alias(alias)


def test_errors_are_one_line_with_hint() -> None:
    exc = InvalidRefError("clf@", "empty")
    assert isinstance(exc, NbmciError)
    assert exc.hint and exc.hint in str(exc)
