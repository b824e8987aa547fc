"""A URL root is never taken for a local folder: every command family either works on an
``s3://`` root (synth, pipeline run, sql, features build-training-set, models:
tests/test_objstore.py)
or refuses it, and refuses other schemes, before it creates anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines import devserver
from pipelines.cli import app
from sensorfleet.config import LANDING_ENV, ROOT_ENV, resolve_paths, resolve_roots, staging_folder
from sensorfleet.objstore import LocationError, ObjectUrl, parse_location


@pytest.mark.parametrize(("given", "expected"), [
    ("s3://bucket/data/x", ObjectUrl("bucket", "data/x")),
    ("s3://bucket", ObjectUrl("bucket", "")),
    ("S3://bucket/p/", ObjectUrl("bucket", "p")),
    (Path("s3://bucket/data"), ObjectUrl("bucket", "data")),  # Path() collapsed it to s3:/bucket/data
    ("file:///tmp/root", Path("/tmp/root")),
    (Path("file:///tmp/root"), Path("/tmp/root")),
    ("data/root", Path("data/root")),
    ("./odd:name", Path("./odd:name")),
])
def test_parse_location(given: str | Path, expected: object) -> None:
    assert parse_location(given) == expected


@pytest.mark.parametrize("bad", ["gs://bucket/x", "http://host/x", "https://host/x", "az://c/x", "hdfs://n/x",
                                 "s3://", "s3:///key", Path("gs://bucket/x")])
def test_parse_location_refuses(bad: str | Path) -> None:
    with pytest.raises(LocationError, match="root"):
        parse_location(bad, "data root")


def test_resolve_paths_refuses_urls_and_resolve_roots_stages_them(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENSORFLEET_STAGING", str(tmp_path / "staging"))
    for root, landing in [("s3://b/data", None), (tmp_path, "s3://b/landing")]:
        with pytest.raises(LocationError, match="object-store URL; this command works on a local folder only"):
            resolve_paths(root, landing)
    monkeypatch.setenv(ROOT_ENV, "s3://b/data")
    with pytest.raises(LocationError, match="s3://b/data"):
        resolve_paths()
    monkeypatch.delenv(ROOT_ENV)
    assert resolve_paths(f"file://{tmp_path}/r").root == tmp_path / "r"
    roots = resolve_roots("s3://b/data")
    assert roots.root_url == ObjectUrl("b", "data") and roots.landing_url == ObjectUrl("b", "data/landing")
    assert roots.paths.root == staging_folder(ObjectUrl("b", "data")) == tmp_path / "staging" / "b" / "data"
    assert roots.paths.root_url == "s3://b/data" and roots.paths.location("tables") == "s3://b/data/tables"
    local = resolve_roots(tmp_path / "r", None)
    assert not local.staged and local.paths.root_url is None and local.paths.location("tables") == str(tmp_path / "r" / "tables")
    assert os.listdir(tmp_path) == []  # resolving creates nothing


REFUSED = [
    # (command line, text the error must hold); every family: demo, pipeline, synth, sql, features,
    # models, import-emva. s3:// where the command works on local roots only, gs:// everywhere.
    (["demo", "--root", "s3://bucket/data", "--modules", "2"], "object-store URL"),
    (["demo", "--landing", "s3://bucket/landing", "--root", "ROOT"], "object-store URL"),
    (["pipeline", "run", "--root", "gs://bucket/data", "--landing", "LANDING"], "unsupported URL scheme 'gs'"),
    (["pipeline", "run", "--root", "ROOT", "--landing", "http://host/landing"], "unsupported URL scheme 'http'"),
    (["synth", "-n", "1", "--out", "gs://bucket/landing"], "unsupported URL scheme 'gs'"),
    (["synth", "-n", "1", "--out", "s3://bucket/landing", "--truth", "TRUTH"], "drop --truth"),
    (["sql", "--root", "gs://bucket/data", "SELECT 1"], "unsupported URL scheme 'gs'"),
    (["sql", "--root", "ROOT", "--output", "s3://bucket/out.csv", "--format", "csv", "SELECT 1"], "--output"),
    (["features", "build-training-set", "--spine", "SPINE", "--out", "s3://bucket/set.parquet", "--root", "ROOT"], "--out"),
    (["features", "build-training-set", "--spine", "SPINE", "--out", "OUT", "--root", "gs://b/d"], "'gs'"),
    (["features", "rebuild", "s3://bucket/set.parquet.manifest.json"], "manifest"),
    (["models", "list", "--root", "gs://bucket/data"], "'gs'"),
    (["models", "train", "--root", "https://host/data"], "'https'"),
    (["models", "score", "--root", "gs://bucket/data"], "'gs'"),
    (["import-emva", "SOURCE", "--landing", "s3://bucket/landing"], "object-store URL"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in enumerate(REFUSED)])
def test_commands_refuse_urls_before_creating_anything(args: list[str], message: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SENSORFLEET_STAGING", str(tmp_path / "staging"))
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.delenv(LANDING_ENV, raising=False)
    names = {"ROOT": "root", "LANDING": "landing", "TRUTH": "truth", "SPINE": "spine.parquet", "OUT": "set.parquet",
             "SOURCE": "emva"}
    result = CliRunner().invoke(app, [str(tmp_path / names[a]) if a in names else a for a in args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    assert os.listdir(work) == [] and sorted(os.listdir(tmp_path)) == ["cwd"]  # no `s3:` folder, no staging


def test_make_dev_refuses_an_object_root(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert devserver.main(["--root", "s3://bucket/data", "--port", "1"]) == 2
    assert devserver.main(["--root", str(tmp_path / "r"), "--landing", "gs://b/l", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "object-store URL" in err and "unsupported URL scheme 'gs'" in err
    assert os.listdir(tmp_path) == []


def test_dagster_resource_refuses_an_object_root() -> None:
    from assets.resources import StorageResource

    with pytest.raises(LocationError, match="object-store URL"):
        StorageResource(root="s3://bucket/data").paths()
