"""Settings: defaults, project root discovery, files and environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbmci.config import find_root, load_settings
from nbmci.errors import ConfigError


def test_defaults_live_in_dot_nbmci_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    nested = tmp_path / "notebooks" / "deep"
    nested.mkdir(parents=True)
    settings = load_settings(nested)
    assert settings.root == tmp_path
    assert settings.store_url == str(tmp_path / ".nbmci")
    assert settings.registry_url == f"sqlite:///{tmp_path / '.nbmci' / 'registry.db'}"


def test_an_existing_state_dir_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    inner = tmp_path / "sub"
    (inner / ".nbmci").mkdir(parents=True)
    assert find_root(inner) == inner


def test_tool_table_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.nbmci]\nstore = 'memory://team'\ngc_grace = 60\n[tool.nbmci.ci]\nnotebooks = []\n")
    settings = load_settings(tmp_path)
    assert settings.store_url == "memory://team" and settings.gc_grace == 60
    assert settings.extra == {"ci": {"notebooks": []}}
    monkeypatch.setenv("NBMCI_REGISTRY_URL", "sqlite:////tmp/other.db")
    monkeypatch.setenv("NBMCI_DURABLE", "false")
    settings = load_settings(tmp_path)
    assert settings.registry_url == "sqlite:////tmp/other.db" and not settings.durable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.nbmci]\nstroe = 'x'\n", "Unknown key 'stroe'"),
        ("[tool.nbmci]\ngc_grace = 'soon'\n", "wrong type"),
        ("[tool.nbmci]\ndurable = 1\n", "wrong type"),
        ("[tool.nbmci\n", "not valid TOML"),
        ("[tool]\nnbmci = 3\n", "must be a table"),
    ],
)
def test_bad_configuration_is_reported(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_bad_environment_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBMCI_DURABLE", "perhaps")
    with pytest.raises(ConfigError, match="not a boolean"):
        load_settings(tmp_path)
