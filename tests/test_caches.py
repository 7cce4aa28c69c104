"""The two caches: fitted models (pipeline.fitcache) and values memoised per history (History.memo)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import FeatureSettings
from features.history import History
from models.fitting import fit_model, predict_scores
from models.registry import MODELS
from pipeline.fitcache import FitCache
from tests.featurekit import base_row
from tests.frames import train_frame

BASE = base_row(
    ts_listen=1_478_000_000, media_id=10, album_id=5, context_type=1, listen_type=1, user_id=0, user_age=20, artist_id=3
)


def _xy(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    return X, (X["a"] + rng.normal(0, 1, 120) > 0).astype(int).to_numpy()


def _spec(name: str):
    from core.settings import ModelSettings

    return MODELS[name].build(ModelSettings(seed=0))


def test_fit_cache_key_tells_parameters_rows_labels_and_code_apart(tmp_path) -> None:
    X, y = _xy()
    cache = FitCache(tmp_path, code="v1")
    key = cache.key(_spec("logistic_regression"), X, y)
    assert key == cache.key(_spec("logistic_regression"), X, y)
    assert key != cache.key(_spec("sgd"), X, y)
    assert key != cache.key(_spec("logistic_regression"), X.iloc[1:], y[1:])
    assert key != cache.key(_spec("logistic_regression"), X, 1 - y)
    assert key != cache.key(_spec("logistic_regression"), X, y, np.arange(120))  # extra input (rounds)
    assert key != FitCache(tmp_path, code="v2").key(_spec("logistic_regression"), X, y)


def test_fit_cache_round_trip_miss_and_prune(tmp_path) -> None:
    X, y = _xy()
    cache = FitCache(tmp_path, code="v1")
    model = fit_model(_spec("logistic_regression"), X, y)
    key = cache.key(_spec("logistic_regression"), X, y)
    assert cache.get("bakeoff", "logistic_regression", key) is None
    cache.put("bakeoff", "logistic_regression", key, {"model": model, "fit_seconds": 1.5})
    again = FitCache(tmp_path, code="v1")
    entry = again.get("bakeoff", "logistic_regression", key)
    np.testing.assert_array_equal(predict_scores(entry["model"], X), predict_scores(model, X))
    (tmp_path / f"{again.tag}-bakeoff-sgd-stale.joblib").write_bytes(b"not a joblib file")
    assert again.get("bakeoff", "sgd", "stale") is None  # unreadable: a miss, never a failure
    other_data = FitCache(tmp_path, code="v1", data="other features")
    other_data.put("bakeoff", "logistic_regression", key, {"model": model, "fit_seconds": 1.5})
    # A run on the first data that fits only SGD (the quick loop) keeps the logistic regression's
    # entry of the same data and code for the next full run; the other data's entry goes.
    quick = FitCache(tmp_path, code="v1")
    quick.put("bakeoff", "sgd", "k2", {"model": model, "fit_seconds": 0.1})
    assert quick.prune() == 1 and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{cache.tag}-bakeoff-{entry}.joblib" for entry in (f"logistic_regression-{key}", "sgd-k2", "sgd-stale")
    )
    assert quick.get("bakeoff", "logistic_regression", key) is not None
    assert FitCache(tmp_path, code="v2").prune() == 3  # new code: nothing of the old is kept
    off = FitCache(tmp_path, code="v1", enabled=False)
    assert off.get("bakeoff", "logistic_regression", key) is None and off.prune() == 0


def _history(store, media: int = 10) -> History:
    rows = [{"ts_listen": 1_478_000_000 + 60 * i, "media_id": media + i % 3} for i in range(12)]
    return History(train_frame(BASE, rows), settings=FeatureSettings(), store=store)


def test_memo_computes_once_per_history_and_shares_through_the_store(tmp_path) -> None:
    calls = []

    def compute():
        calls.append(1)
        return np.arange(5)

    h = _history(tmp_path)
    np.testing.assert_array_equal(h.memo("thing", compute, code="c1"), np.arange(5))
    h.memo("thing", compute, code="c1")
    assert len(calls) == 1  # in memory
    np.testing.assert_array_equal(_history(tmp_path).memo("thing", compute, code="c1"), np.arange(5))
    assert len(calls) == 1  # from the store, in another History (another process, in make)
    _history(tmp_path).memo("thing", compute, code="c2")
    assert len(calls) == 2  # other code: computed again
    other = _history(tmp_path, media=20)
    assert other.fingerprint != h.fingerprint
    other.memo("thing", compute, code="c1")
    assert len(calls) == 3  # other data: computed again, and the first history's entries pruned
    assert all(p.stem.endswith(other.fingerprint) for p in tmp_path.glob("*.joblib"))


def test_a_corrupt_memo_entry_is_recomputed(tmp_path) -> None:
    h = _history(tmp_path)
    h.memo("x", lambda: 1, code="c")
    (path,) = [p for p in tmp_path.glob("x-*.joblib")]
    path.write_bytes(b"garbage")
    assert _history(tmp_path).memo("x", lambda: 2, code="c") == 2


def test_index_orders_from_the_store_give_the_same_index(tmp_path) -> None:
    a = _history(tmp_path).index("user_id", "media_id")
    b = _history(tmp_path).index("user_id", "media_id")  # rebuilt from the stored order
    for attr in ("order", "uniq", "codes_sorted", "ts_sorted", "sorted_key"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    plain = _history(None).index("user_id", "media_id")
    np.testing.assert_array_equal(a.order, plain.order)


@pytest.mark.parametrize("store", [None, "dir"])
def test_memo_without_store_keeps_values_in_memory_only(tmp_path, store) -> None:
    h = _history(tmp_path / "s" if store else None)
    assert h.memo("v", lambda: 7) == 7
    assert (tmp_path / "s").exists() == bool(store)
