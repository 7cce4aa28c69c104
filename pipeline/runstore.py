"""Training runs as typed results and as files: ``runs/<id>/`` written aside, committed at once, read back.

A training run's results travel as dataclasses (:class:`ModelScore`, :class:`Ranking`,
:class:`Fold`, :class:`RunMetrics`) and are written as plain files in a documented
layout::

    runs/<UTC id>/params.json, metrics.json, val_predictions.parquet, optuna_trials.csv,
                  winner_importance.csv, timings.json

A run is staged in ``runs/.tmp-<id>/`` (:meth:`RunStore.stage`) and renamed into place
by :meth:`StagedRun.commit`; a run killed before that leaves nothing that looks
finished.  ``submit`` and the report read runs through :class:`RunStore` too, so the
layout is defined here once.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import PipelineError
from core.io import read_json, write_csv, write_json, write_parquet
from pipeline.data.dataset import Matrix

__all__ = [
    "ModelScore",
    "Ranking",
    "Fold",
    "RunMetrics",
    "RunStore",
    "StagedRun",
    "data_fingerprint",
    "library_versions",
    "new_run_id",
]


@dataclass(frozen=True)
class ModelScore:
    """One model's line of the ranking: its validation scores, costs and what its scores mean."""

    model: str
    auc: float
    auc_lo: float
    auc_hi: float
    log_loss: float
    brier: float
    accuracy: float
    fit_seconds: float
    predict_seconds: float
    rows_used: int
    row_budget: int | None
    n_features: int
    note: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelScore:
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Ranking:
    """Model scores, best AUC first (ties broken by name, so the order is reproducible)."""

    scores: tuple[ModelScore, ...]

    @classmethod
    def of(cls, scores: list[ModelScore] | tuple[ModelScore, ...]) -> Ranking:
        if not scores:
            raise PipelineError("no model was scored: the ranking is empty")
        return cls(tuple(sorted(scores, key=lambda s: (-s.auc, s.model))))

    @property
    def winner(self) -> ModelScore:
        return self.scores[0]

    @property
    def models(self) -> list[str]:
        return [s.model for s in self.scores]

    def __iter__(self) -> Iterator[ModelScore]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def get(self, model: str) -> ModelScore | None:
        return next((s for s in self.scores if s.model == model), None)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.scores]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]]) -> Ranking:
        return cls(tuple(ModelScore.from_json(r) for r in rows))


@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold of the winner's validation estimate."""

    round: int
    rows: int
    auc: float
    train_rows: int


@dataclass(frozen=True)
class RunMetrics:
    """What one training run found: ``runs/<id>/metrics.json`` and ``reports/metrics.json``."""

    run_id: str
    validation_auc: float
    validation_auc_round1: float
    validation_folds: tuple[Fold, ...]
    winner: str
    ranking: Ranking
    optuna: dict[str, Any]
    timings: dict[str, float]
    n_train: int
    n_valid: int
    valid_positive_rate: float
    importance_source: str
    demo: bool
    notes: tuple[str, ...] = ()
    #: Extra sections (diagnostics, covered models...) kept as plain JSON.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name == "ranking":
                value = value.to_json()
            elif f.name == "validation_folds":
                value = [asdict(x) for x in value]
            elif f.name == "notes":
                value = list(value)
            out[f.name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunMetrics:
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: d.get(k) for k in names}
        kw["ranking"] = Ranking.from_json(d.get("ranking") or [])
        kw["validation_folds"] = tuple(Fold(**x) for x in d.get("validation_folds") or [])
        kw["notes"] = tuple(d.get("notes") or ())
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})


# --- Fingerprints and versions --------------------------------------------------------


def data_fingerprint(matrix: Matrix) -> str:
    """sha256 of the examples' ids, rounds and labels and of every feature column (names and float32 bytes)."""
    h = hashlib.sha256()
    ex = matrix.examples
    for col in ("example_id", "round", "user_id", "is_listened", "sample_id"):
        if col in ex.columns:
            h.update(col.encode())
            h.update(np.ascontiguousarray(ex[col].to_numpy()).tobytes())
    for col in matrix.X.columns:
        h.update(str(col).encode())
        h.update(np.ascontiguousarray(matrix.X[col].to_numpy(dtype=np.float32)).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and of every library whose numbers a model depends on."""
    import joblib
    import lightgbm
    import optuna
    import pyarrow
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
        "optuna": optuna.__version__,
        "pyarrow": pyarrow.__version__,
        "joblib": joblib.__version__,
    }


# --- The store --------------------------------------------------------------------------


def new_run_id(runs_dir: Path, now: datetime | None = None) -> str:
    """Claim ``runs/<UTC YYYYmmddTHHMMSSZ>`` (``-2``, ``-3``... if taken) by creating it; never reuse one."""
    base = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    runs_dir.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        run_id = base if k == 1 else f"{base}-{k}"
        try:
            (runs_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id
    raise PipelineError(f"cannot create a new run folder under {runs_dir}")


class StagedRun:
    """A run being written: its files go to ``runs/.tmp-<id>/`` and appear at ``runs/<id>/`` on :meth:`commit`."""

    def __init__(self, runs_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.final = runs_dir / run_id
        self.path = runs_dir / f".tmp-{run_id}"
        self.path.mkdir(parents=True, exist_ok=True)
        self.committed = False

    def write_json(self, name: str, obj: Any) -> None:
        write_json(obj, self.path / name)

    def write_parquet(self, name: str, df: pd.DataFrame) -> None:
        write_parquet(df, self.path / name)

    def write_csv(self, name: str, df: pd.DataFrame) -> None:
        write_csv(df, self.path / name)

    def commit(self) -> Path:
        """Rename the staged folder over the claimed (empty) run id: the run now exists whole."""
        os.replace(self.path, self.final)
        self.committed = True
        return self.final

    def discard(self) -> None:
        """Remove what an unfinished run wrote, and the run id it claimed if still empty."""
        shutil.rmtree(self.path, ignore_errors=True)
        if not self.committed and self.final.exists() and not any(self.final.iterdir()):
            self.final.rmdir()

    def __enter__(self) -> StagedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()


class RunStore:
    """The ``runs/`` folder: stage new runs, list and read finished ones."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)

    def stage(self, now: datetime | None = None) -> StagedRun:
        return StagedRun(self.runs_dir, new_run_id(self.runs_dir, now))

    def ids(self) -> list[str]:
        """Finished runs (a metrics.json inside), oldest first."""
        if not self.runs_dir.exists():
            return []
        return sorted(d.name for d in self.runs_dir.iterdir() if d.is_dir() and (d / "metrics.json").exists())

    def metrics(self, run_id: str) -> RunMetrics:
        path = self.runs_dir / run_id / "metrics.json"
        if not path.exists():
            raise PipelineError(f"{path} is missing: run `make train`")
        return RunMetrics.from_json(read_json(path))

    def tuned_params(self, run_id: str | None) -> dict[str, Any] | None:
        """The LightGBM parameters a run's Optuna study picked (``None`` if none)."""
        if not run_id:
            return None
        path = self.runs_dir / run_id / "metrics.json"
        if not path.exists():
            return None
        return (read_json(path).get("optuna") or {}).get("lightgbm_params")
