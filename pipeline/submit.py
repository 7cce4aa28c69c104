"""Predict the test set with a saved model and write a submission (`make submit`, `MODEL=<name> make submit`).

The model is ``MODEL`` (environment or ``--model``) or, by default, the winner named
in ``models/artifacts/winner.json``.  Its fitted pipeline is read from
``models/artifacts/<model>.joblib``; when that file is missing or stale (made from
other data, other features or an earlier training run) the model is refit on ALL train
examples with the same factory, selected features and tuned parameters, and cached.

The submission writer starts from the test's own ``sample_id`` order
(``data/interim/test.parquet``), checks count, order, uniqueness, range [0, 1] and NaN,
and writes ``submissions/submission_<model>_<UTC YYYYmmddTHHMMSSZ>.csv`` (never over an
earlier file) and a byte-identical copy ``submissions/latest.csv``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from core import config
from core.errors import PipelineError, run_cli
from core.io import dump_joblib, read_json, write_text
from core.schema import SAMPLE_ID, TARGET
from core.settings import ModelSettings, SubmitSettings, load
from models.fitting import fit_model, one_blas_thread, predict_scores
from models.registry import MODELS
from pipeline.data.dataset import Matrix, load_matrix
from pipeline.runstore import RunStore, data_fingerprint, library_versions

log = logging.getLogger("submit")

__all__ = ["SubmissionError", "check_submission", "write_submission", "resolve_model", "load_or_refit", "run"]

FLOAT_FORMAT = "%.6f"


class SubmissionError(PipelineError):
    """A submission that would not match the test file: it is never written."""


def check_submission(expected_ids: np.ndarray, predictions: pd.DataFrame) -> pd.DataFrame:
    """Check ``predictions`` (sample_id, is_listened) against the test's ids; return the frame to write.

    Raises :class:`SubmissionError` on a wrong count, duplicated or unknown ids, a
    different order, NaN, or probabilities outside [0, 1].
    """
    expected = np.asarray(expected_ids)
    if list(predictions.columns) != [SAMPLE_ID, TARGET]:
        raise SubmissionError(f"submission columns must be {SAMPLE_ID},{TARGET}; got {','.join(predictions.columns)}")
    ids = predictions[SAMPLE_ID].to_numpy()
    if len(np.unique(expected)) != len(expected):
        raise SubmissionError("the test file's sample_id values are not unique")
    if len(ids) != len(expected):
        raise SubmissionError(f"wrong count: {len(ids)} predictions for {len(expected)} test rows")
    if len(np.unique(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()[:5]
        raise SubmissionError(f"duplicated sample_id in the predictions: {', '.join(map(str, dup))}")
    if not np.array_equal(ids, expected):
        missing = np.setdiff1d(expected, ids)
        if missing.size:
            raise SubmissionError(
                f"{missing.size} test sample_id(s) have no prediction (first: {', '.join(map(str, missing[:5]))})"
            )
        at = int(np.flatnonzero(ids != expected)[0])
        raise SubmissionError(f"wrong order: row {at} holds sample_id {ids[at]} where the test file has {expected[at]}")
    p = predictions[TARGET].to_numpy(dtype=np.float64)
    bad = np.isnan(p)
    if bad.any():
        raise SubmissionError(
            f"{int(bad.sum())} prediction(s) are NaN (first sample_id: {', '.join(map(str, ids[bad][:5]))})"
        )
    out = (p < 0) | (p > 1)
    if out.any():
        raise SubmissionError(
            f"{int(out.sum())} prediction(s) outside [0, 1] (e.g. {p[out][0]!r} for sample_id {ids[out][0]})"
        )
    return pd.DataFrame({SAMPLE_ID: expected.astype(np.int64), TARGET: p})


def _claim(path: Path) -> Path:
    """Create ``path`` (or ``<stem>-2.csv``, ``-3``...) exclusively, so no earlier submission is overwritten."""
    for k in range(1, 10_000):
        candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise PipelineError(f"cannot find a free file name for {path}")


def write_submission(
    expected_ids: np.ndarray,
    predictions: pd.DataFrame,
    *,
    out_dir: Path,
    model: str,
    now: datetime | None = None,
) -> Path:
    """Check and write ``submission_<model>_<UTC time>.csv`` and ``latest.csv``; return the new file's path."""
    frame = check_submission(expected_ids, predictions)
    text = frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = _claim(out_dir / f"submission_{model}_{stamp}.csv")
    try:
        write_text(text, path)
    except BaseException:
        path.unlink(missing_ok=True)  # the empty placeholder of a failed write
        raise
    write_text(text, out_dir / "latest.csv")
    return path


def expected_test_ids(test: Matrix) -> np.ndarray:
    """The test's sample_ids in the test file's order (data/interim/test.parquet), else the examples' order."""
    if config.TEST_PARQUET.exists():
        return pd.read_parquet(config.TEST_PARQUET, columns=[SAMPLE_ID])[SAMPLE_ID].to_numpy()
    return test.examples[SAMPLE_ID].to_numpy()


def resolve_model(name: str | None, models_dir: Path) -> tuple[str, dict[str, Any]]:
    """The model to submit (``name`` or the winner) and winner.json's content (``{}`` if absent)."""
    winner_path = models_dir / "winner.json"
    winner = read_json(winner_path) if winner_path.exists() else {}
    if name:
        if name not in MODELS:
            raise PipelineError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
        return name, winner
    if not winner:
        raise PipelineError(f"{winner_path} is missing: run `make train` first (or name a model: MODEL=<name>)")
    return winner["model"], winner


def _stale_reason(artifact: dict[str, Any], *, fingerprint: str, features: list[str], run_id: str | None) -> str:
    meta = artifact.get("meta", {})
    if meta.get("data_fingerprint") != fingerprint:
        return "it was fit on other data"
    if list(artifact.get("features", [])) != features:
        return "its features differ from selection.json"
    if run_id and meta.get("run_id") != run_id:
        return f"it belongs to training run {meta.get('run_id')}, not to the latest one ({run_id})"
    return ""


@one_blas_thread()
def load_or_refit(
    name: str, winner: dict[str, Any], train: Matrix, *, models_dir: Path, runs_dir: Path, settings: ModelSettings
) -> tuple[Any, list[str], dict[str, Any]]:
    """Load ``models/artifacts/<name>.joblib`` if it is current, else refit on all train examples and cache it."""
    selection_path = models_dir / "selection.json"
    if not selection_path.exists():
        raise PipelineError(f"{selection_path} is missing: run `make select` and `make train` first")
    features = list(read_json(selection_path)["selected"])
    missing = [f for f in features if f not in train.X.columns]
    if missing:
        raise PipelineError(
            f"selection.json lists features the matrix lacks ({', '.join(missing[:5])}): run `make train`"
        )
    fingerprint = data_fingerprint(train)
    run_id = winner.get("run_id")
    path = models_dir / f"{name}.joblib"
    if path.exists():
        artifact = joblib.load(path)
        reason = _stale_reason(artifact, fingerprint=fingerprint, features=features, run_id=run_id)
        if not reason:
            log.info("loaded %s", path.relative_to(config.ROOT) if path.is_relative_to(config.ROOT) else path)
            return artifact["model"], list(artifact["features"]), artifact["meta"]
        log.warning("%s is stale (%s): refitting", path.name, reason)
    store = RunStore(runs_dir)
    tuned = store.tuned_params(run_id)
    log.info("fitting %s on all %d train examples (%d features) ...", name, len(train.y), len(features))
    t0 = time.perf_counter()
    model = fit_model(
        MODELS[name].build(settings, tuned=tuned), train.X[features], train.y, rounds=train.inner_rounds()
    )
    seconds = time.perf_counter() - t0
    score = store.metrics(run_id).ranking.get(name) if run_id and run_id in store.ids() else None
    meta = {
        "model": name,
        "run_id": run_id,
        "seed": settings.seed,
        "data_fingerprint": fingerprint,
        "versions": library_versions(),
        "timings": {"refit": round(seconds, 3)},
        "validation_auc": score.auc if score is not None else None,
        "tuned_params": tuned,
        "fit_on": "all train examples (training + validation rounds)",
        "refit_by": "submit",
        "n_rows": len(train.y),
    }
    dump_joblib({"model": model, "features": features, "meta": meta}, path)
    log.info("cached %s (fit %.1fs)", path.name, seconds)
    return model, features, meta


def run(
    *,
    model: str | None = None,
    train: Matrix | None = None,
    test: Matrix | None = None,
    expected_ids: np.ndarray | None = None,
    models_dir: Path | None = None,
    runs_dir: Path | None = None,
    out_dir: Path | None = None,
    settings: ModelSettings | None = None,
    now: datetime | None = None,
) -> Path:
    """Predict the test with ``model`` (default: the winner) and write the submission; return its path."""
    models_dir = Path(models_dir or config.MODELS_DIR)
    runs_dir = Path(runs_dir or config.RUNS)
    out_dir = Path(out_dir or config.SUBMISSIONS)
    settings = settings if settings is not None else ModelSettings()
    demo = config.is_demo_data()
    if demo:
        log.warning("=" * 72)
        log.warning("DEMO DATA: data/raw holds the generated demo set, not the DSG17 files.")
        log.warning("This submission is for checking the pipeline only; it is not a DSG17 submission.")
        log.warning("=" * 72)
    name, winner = resolve_model(model, models_dir)
    train = train if train is not None else load_matrix("train")
    fitted, features, meta = load_or_refit(
        name, winner, train, models_dir=models_dir, runs_dir=runs_dir, settings=settings
    )
    test = test if test is not None else load_matrix("test")
    missing = [f for f in features if f not in test.X.columns]
    if missing:
        raise PipelineError(f"the test features lack {', '.join(missing[:5])}: run `make features` again")
    scores = predict_scores(fitted, test.X[features])
    predictions = pd.DataFrame({SAMPLE_ID: test.examples[SAMPLE_ID].to_numpy(), TARGET: scores})
    expected = expected_ids if expected_ids is not None else expected_test_ids(test)
    path = write_submission(expected, predictions, out_dir=out_dir, model=name, now=now)
    shown = path.relative_to(config.ROOT) if path.is_relative_to(config.ROOT) else path
    auc = meta.get("validation_auc")
    log.info(
        "wrote %s (%d rows, %s; validation AUC %s) and latest.csv",
        shown,
        len(predictions),
        name,
        f"{auc:.4f}" if auc is not None else "n/a",
    )
    if demo:
        log.warning("DEMO DATA: %s was made from the generated demo set", shown)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description="Write a submission with the winner or MODEL=<name>.")
    ap.add_argument("--model", default=None, help=f"one of: {', '.join(MODELS)} (default: $MODEL or the winner)")
    args = ap.parse_args()
    chosen = load(SubmitSettings)
    run(model=args.model or chosen.model, settings=load(ModelSettings))


if __name__ == "__main__":
    run_cli(main)
