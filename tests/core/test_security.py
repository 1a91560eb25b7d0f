"""Loading runs no untrusted code; hostile artifacts and manifests are refused (SE-*, BI-*)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbmci.api import Project
from nbmci.digest import canonical_json
from nbmci.errors import (
    CorruptObjectError,
    IntegrityError,
    InvalidInputError,
    NbmciError,
    UntrustedModelError,
)


class Marker:
    """Unpickling this creates a file: proof that code from the artifact ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (_write_marker, (self.path, "pwned"))


def _write_marker(path: str, text: str) -> Any:
    Path(path).write_text(text)
    return text


def _register(project: Project, name: str, model_bytes: bytes, fmt: str,
              trusted_types: list[str], datasets: list[dict[str, Any]] | None = None) -> str:
    """Put an artifact into the store and registry as a hostile teammate sharing them could."""
    stored = project.store.put_bytes(model_bytes)
    row = {"message": "", "author": "mallory", "model_digest": stored.digest,
           "model_format": fmt, "model_class": "x.Y", "model_size": len(model_bytes),
           "trusted": fmt != "joblib", "trusted_types": trusted_types, "params": {},
           "metrics": {}, "signature": {}, "lineage": {}, "stored": {}}
    digests = [stored.digest, *(d["digest"] for d in datasets or [])]
    number = project.registry.add_version(name, row, datasets or [], digests, actor="mallory")
    return f"{name}@{number}"


def _dataset_row(project: Project, manifest: dict[str, Any], key: str = "X") -> dict[str, Any]:
    digest = project.store.put_bytes(canonical_json(manifest)).digest
    return {"key": key, "digest": digest, "kind": manifest.get("kind", "dataframe"), "rows": 1,
            "nbytes": 1, "schema": [], "stats": {}}


# -- SE-01 -----------------------------------------------------------------------------------


def test_se01_pickled_model_never_runs_without_trust(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pytest.warns(Warning):
        version = project.commit(Marker(marker), None, name="evil")
    assert not marker.exists()
    with pytest.raises(UntrustedModelError, match="pickle") as info:
        project.load(version.ref)
    assert "trust=True" in str(info.value)
    assert not marker.exists()
    project.load(version.ref, trust=True)  # the explicit, per-artifact opt-in
    assert marker.read_text() == "pwned"
    [event] = [e for e in project.registry.events("evil") if e["kind"] == "model.trusted"]
    assert event["version"] == 1 and event["actor"]


# -- SE-02 / SE-03 ---------------------------------------------------------------------------


def _skops_with_class(module: str, cls: str) -> bytes:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    data = sio.dumps(LinearRegression())
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    schema["__module__"], schema["__class__"] = module, cls
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            payload = json.dumps(schema).encode() if item.filename == "schema.json" \
                else source.read(item)
            target.writestr(item, payload)
    return out.getvalue()


@pytest.mark.parametrize(("module", "cls"), [("evilmod", "X"), ("os", "system")])
def test_se02_skops_file_naming_untrusted_types_is_refused_before_import(
        project: Project, module: str, cls: str) -> None:
    ref = _register(project, "m", _skops_with_class(module, cls), "skops", [])
    with pytest.raises(UntrustedModelError) as info:
        project.load(ref)
    assert f"{module}.{cls}" in info.value.types
    assert "evilmod" not in sys.modules


def _skops_bypass_files() -> dict[str, bytes]:
    import operator

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    return {
        "operator": sio.dumps(FunctionTransformer(func=operator.methodcaller("__reduce__"))),
        "attrgetter": sio.dumps(FunctionTransformer(func=operator.attrgetter("__class__"))),
        "method": sio.dumps(FunctionTransformer(func=np.random.RandomState(0).random_sample)),
    }


@pytest.mark.parametrize("kind", ["operator", "attrgetter", "method"])
def test_se03_known_skops_audit_bypasses_are_refused(project: Project, kind: str) -> None:
    ref = _register(project, "m", _skops_bypass_files()[kind], "skops", [])
    with pytest.raises(UntrustedModelError, match=r"refused|not approved"):
        project.load(ref)


def test_se03_skops_is_recent_enough() -> None:
    from importlib.metadata import version

    major, minor = (int(p) for p in version("skops").split(".")[:2])
    assert (major, minor) >= (0, 13)


def test_approved_types_are_exactly_those_recorded_at_commit(project: Project) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=double)
    version = project.commit(model, None, name="ft")
    assert version.model.trusted_types == [f"{__name__}.double"]
    loaded = project.load(version.ref).func  # from the copy of this module the version keeps
    assert loaded.__qualname__ == "double" and loaded(21) == 42
    # the same bytes registered without that approval do not load
    ref = _register(project, "ft2", project.store.get(version.model.digest), "skops", [])
    with pytest.raises(UntrustedModelError):
        project.load(ref)


def double(x: Any) -> Any:
    return x * 2


# -- SE-04 / BI-02 ---------------------------------------------------------------------------


def _valid_manifest(project: Project, fitted: Any) -> dict[str, Any]:
    version = project.commit(fitted, {"X": pd.DataFrame({"a": [1.0, 2.0]})}, name="ok")
    from nbmci.snapshot.tables import read_manifest

    return read_manifest(project.store, version.data["X"].digest)


@pytest.mark.parametrize("extra", [{"loader_module": "evil"}, {"code": "code/"},
                                   {"handler": "x.py"}, {"entry_point": "evil:main"}])
def test_se04_manifest_naming_code_is_refused(project: Project, fitted: Any,
                                              extra: dict[str, str]) -> None:
    manifest = {**_valid_manifest(project, fitted), **extra}
    ref = _register(project, "m", b"PK", "skops", [], [_dataset_row(project, manifest)])
    with pytest.raises(IntegrityError, match="unknown fields"):
        project.load_data(ref)
    assert "evil" not in sys.modules


def test_se04_model_format_naming_a_module_is_refused(project: Project) -> None:
    ref = _register(project, "m", b"anything", "os:system", [])
    with pytest.raises(InvalidInputError, match="Unknown model format"):
        project.load(ref)


@pytest.mark.parametrize("reference", ["../../outside.pkl", "/etc/passwd",
                                       "blake3:../../../../etc/passwd", "file:///etc/passwd"])
def test_bi02_manifest_paths_outside_the_store_are_refused(
        project: Project, fitted: Any, tmp_path: Path, reference: str) -> None:
    manifest = _valid_manifest(project, fitted)
    manifest["columns"][0]["chunks"] = [reference]
    ref = _register(project, "m", b"PK", "skops", [], [_dataset_row(project, manifest)])
    with pytest.raises(IntegrityError, match="not an object digest"):
        project.load_data(ref)


# -- SE-05 -----------------------------------------------------------------------------------


def _pickle_of(marker: Path) -> bytes:
    return pickle.dumps(Marker(marker))


def test_se05_every_artifact_kind_fails_closed(project: Project, fitted: Any,
                                               tmp_path: Path) -> None:
    import joblib

    marker = tmp_path / "marker"
    payload = _pickle_of(marker)
    compressed = io.BytesIO()
    joblib.dump(Marker(marker), compressed, compress=3)
    attempts = {
        "skops holding a pickle": _register(project, "a", payload, "skops", []),
        "skops holding a .pkl.gz": _register(project, "b", gzip.compress(payload), "skops", []),
        "joblib": _register(project, "c", payload, "joblib", []),
        "compressed joblib": _register(project, "d", compressed.getvalue(), "joblib", []),
    }
    for what, ref in attempts.items():
        with pytest.raises(NbmciError):
            project.load(ref)
        assert not marker.exists(), what
    # a data chunk that is really a pickle
    manifest = _valid_manifest(project, fitted)
    manifest["columns"][0]["chunks"] = [project.store.put_bytes(payload).digest]
    ref = _register(project, "e", b"PK", "skops", [], [_dataset_row(project, manifest)])
    with pytest.raises(IntegrityError):
        project.load_data(ref)
    assert not marker.exists()


# -- BI-06 -----------------------------------------------------------------------------------


def test_bi06_pyarrow_is_patched() -> None:
    import pyarrow as pa

    assert tuple(int(p) for p in pa.__version__.split(".")[:3]) >= (14, 0, 1)


def test_bi06_extension_type_payload_in_a_schema_runs_nothing(
        project: Project, fitted: Any, tmp_path: Path) -> None:
    import pyarrow as pa

    marker = tmp_path / "marker"
    manifest = _valid_manifest(project, fitted)
    schema = pa.schema([pa.field("a", pa.binary(), metadata={
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": _pickle_of(marker),
    })])
    manifest["schema"] = base64.b64encode(schema.serialize().to_pybytes()).decode()
    ref = _register(project, "m", b"PK", "skops", [], [_dataset_row(project, manifest)])
    try:
        project.load_data(ref)
    except NbmciError:
        pass  # refusing is fine too; running code is not
    assert not marker.exists()


# -- BI-05 / SE-14 ---------------------------------------------------------------------------


def _flip_byte(path: str, offset: int = -10) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_bi05_flipped_and_truncated_objects_are_named_on_load_and_fsck(
        project: Project, fitted: Any, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    good = project.commit(fitted, {"X": X}, name="good")
    other = LogisticRegression(C=0.5, max_iter=500).fit(X, y)  # its own model blob
    bad = project.commit(other, {"X": X.assign(extra=2.0), "y": y}, name="bad")
    chunk = project.store.path(bad.data["y"].digest)
    from nbmci.snapshot.tables import manifest_objects, read_manifest

    chunk_digest = manifest_objects(read_manifest(project.store, bad.data["y"].digest))[0]
    _flip_byte(project.store.path(chunk_digest))
    model_path = project.store.path(bad.model.digest)
    os.chmod(model_path, 0o644)
    os.truncate(model_path, 100)
    with pytest.raises(CorruptObjectError) as info:
        project.load(bad.ref)
    assert info.value.digest == bad.model.digest and "hash mismatch" in str(info.value)
    with pytest.raises(CorruptObjectError) as info:
        project.load_data(bad.ref)
    assert info.value.digest == chunk_digest
    report = project.fsck()
    assert not report.ok
    corrupt = {p.subject for p in report.problems if p.kind == "corrupt"}
    assert corrupt == {bad.model.digest, chunk_digest}
    assert all(p.refs == ["bad@1"] for p in report.problems), report.problems
    # the other version is unaffected
    assert project.load(good.ref).get_params() == fitted.get_params()
    pd.testing.assert_frame_equal(project.load_data(good.ref)["X"], X)
    assert chunk  # manifest itself intact


def test_se14_permissions_of_store_objects_and_directories(project: Project,
                                                           fitted: Any) -> None:
    version = project.commit(fitted, {"X": np.arange(10.0)}, name="m")
    path = Path(project.store.path(version.model.digest))
    assert path.stat().st_mode & 0o777 == 0o444
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert (project.settings.state_dir / "objects").stat().st_mode & 0o777 == 0o700
    # a swapped blob (as another local user with write access might do) fails verification
    os.chmod(path, 0o644)
    path.write_bytes(pickle.dumps("swapped"))
    with pytest.raises(CorruptObjectError):
        project.load(version.ref)


def test_store_paths_are_built_only_from_digests(project: Project) -> None:
    for bad in ["../x", "blake3:../../etc", "blake3:" + "g" * 64, "sha1:" + "a" * 40]:
        with pytest.raises(InvalidInputError):
            project.store.path(bad)


def test_fsck_finds_versions_that_do_not_record_their_objects(project: Project,
                                                              fitted: Any) -> None:
    import sqlalchemy as sa

    from nbmci.registry.schema import version_objects

    version = project.commit(fitted, {"X": np.arange(20.0)}, name="m")
    assert project.fsck().ok
    with project.registry.engine.begin() as conn:
        conn.execute(sa.delete(version_objects).where(
            version_objects.c.digest == version.model.digest))
    report = project.fsck()
    assert [(p.kind, p.subject) for p in report.problems] == [("incomplete", "m@1")]


@pytest.mark.parametrize("name", ["../escape.py", "/abs.py", "a/../../b.py", "x\\..\\y.py",
                                  "notes.txt"])
def test_bi02_a_code_bundle_naming_a_path_outside_itself_writes_nothing(
        tmp_path: Path, name: str) -> None:
    from nbmci.errors import IntegrityError
    from nbmci.snapshot import code

    hostile = canonical_json({"format": code.FORMAT, "modules": ["escape"],
                              "files": {name: "import os\n"}})
    before = set(tmp_path.parent.iterdir())
    with pytest.raises(IntegrityError, match=r"outside itself|nothing was written"):
        code.unpack(hostile, "blake3:" + "0" * 64)
    assert set(tmp_path.parent.iterdir()) == before
