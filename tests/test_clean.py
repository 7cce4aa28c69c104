"""`make clean` removes only what the pipeline generated, and says what."""

import pytest

from core import config
from tools import clean


@pytest.fixture
def layout(tmp_path, monkeypatch):
    for name in ("RAW", "INTERIM", "PROCESSED", "MODELS_DIR", "REPORTS", "DEMO", "SUBMISSIONS", "RUNS"):
        d = tmp_path / name.lower()
        d.mkdir()
        (d / ".gitkeep").touch()
        monkeypatch.setattr(config, name, d)
    monkeypatch.setattr(config, "RAW_TRAIN", config.RAW / "train.csv")
    monkeypatch.setattr(config, "RAW_TEST", config.RAW / "test.csv")
    monkeypatch.setattr(config, "DEMO_MARKER", config.RAW / ".demo")
    monkeypatch.setattr(config, "ROOT", tmp_path)
    (config.INTERIM / "train.parquet").write_bytes(b"x")
    (config.PROCESSED / "features").mkdir()
    (config.MODELS_DIR / "winner.json").write_text("{}")
    (config.REPORTS / "model_ranking.html").write_text("<html>")
    (config.SUBMISSIONS / "latest.csv").write_text("sample_id,is_listened\n")
    (config.RUNS / "20260101T000000Z").mkdir()
    config.RAW_TRAIN.write_text("own data")
    config.RAW_TEST.write_text("own data")
    return tmp_path


def test_clean_keeps_user_files_submissions_and_runs(layout, capsys):
    clean.main([])
    out = capsys.readouterr().out
    assert "interim/train.parquet" in out and "kept:" in out
    assert not (config.INTERIM / "train.parquet").exists()
    assert not (config.PROCESSED / "features").exists()
    assert not (config.MODELS_DIR / "winner.json").exists()
    assert (config.INTERIM / ".gitkeep").exists()
    assert config.RAW_TRAIN.read_text() == "own data" and config.RAW_TEST.exists()
    assert (config.SUBMISSIONS / "latest.csv").exists() and (config.RUNS / "20260101T000000Z").exists()


def test_dry_run_removes_nothing(layout, capsys):
    clean.main(["--dry-run"])
    assert "would remove" in capsys.readouterr().out
    assert (config.INTERIM / "train.parquet").exists()


def test_a_stale_demo_marker_does_not_make_user_files_demo(layout):
    # The user copied their own files over a demo pair: the marker's fingerprints no longer match.
    config.DEMO_MARKER.write_text('{"files": {"train.csv": {"bytes": 1, "sha256_head_tail": "0"}}}')
    clean.main([])
    assert config.RAW_TRAIN.read_text() == "own data"
