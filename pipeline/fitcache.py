"""A cache of fitted models, keyed by everything a fit depends on, so a rerun refits only what changed.

The key of a fit is the model's :func:`~models.fitting.fit_signature` (every parameter of
the pipeline, seeds and row budgets included, and the exact bytes of the rows and labels
it is fit on), the rows it is scored on, and a hash of the model code and library
versions.  Fits are deterministic, so a cached fit *is* the fit that would be made now:
reusing it changes no bit of any result.  ``MODELS=lightgbm make train`` then costs one
LightGBM, and changing ``ROWS_KNN`` refits KNN only.

Entries live in ``models/artifacts/cache/<tag>-<kind>-<model>-<key>.joblib``, the tag naming
the data, features and code of the run that wrote them; :meth:`FitCache.prune` drops the
entries of other data, features or code.  Entries of the same ones that a run did not use
stay: after the quick loop (``MODELS=lightgbm``) on unchanged features, a full ``make train``
reads the other models back instead of refitting the whole bake-off.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from core.io import dump_joblib
from models.fitting import fit_signature

log = logging.getLogger("fitcache")

__all__ = ["FitCache", "code_version"]

#: Source files whose change must invalidate every cached fit.
_CODE = ("models/registry.py", "models/estimators.py", "models/fitting.py")


def code_version(root: Path, versions: dict[str, str]) -> str:
    """Hash of the model code and of the library versions: a fit made by other code is not reused."""
    h = hashlib.sha256(repr(sorted(versions.items())).encode())
    for rel in _CODE:
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:16]


class FitCache:
    """Fitted pipelines and what was computed with them, one joblib file per fit."""

    def __init__(self, directory: Path, *, code: str, data: str = "", enabled: bool = True) -> None:
        self.directory = Path(directory)
        self.code = code
        self.enabled = enabled
        #: Names the data, features (``data``) and code the entries were fit with: what prune keeps.
        self.tag = hashlib.sha256(f"{code}|{data}".encode()).hexdigest()[:10]

    def key(self, pipeline: Any, X: Any, y: Any, *extra: Any) -> str:
        """Key of fitting ``pipeline`` on ``(X, y)``; ``extra`` adds what else the entry depends on."""
        h = hashlib.sha256((self.code + fit_signature(pipeline, X, y)).encode())
        for item in extra:
            if isinstance(item, np.ndarray):
                h.update(np.ascontiguousarray(item).tobytes())
            elif hasattr(item, "to_numpy"):
                h.update(repr(list(getattr(item, "columns", []))).encode())
                h.update(np.ascontiguousarray(item.to_numpy()).tobytes())
            else:
                h.update(repr(item).encode())
        return h.hexdigest()[:24]

    def _path(self, kind: str, name: str, key: str) -> Path:
        return self.directory / f"{self.tag}-{kind}-{name}-{key}.joblib"

    def get(self, kind: str, name: str, key: str) -> dict[str, Any] | None:
        """The cached entry, or None (missing, disabled or unreadable)."""
        path = self._path(kind, name, key)
        if not self.enabled or not path.exists():
            return None
        try:
            entry = joblib.load(path)
        except Exception:  # a truncated or foreign file is a miss, never a failure
            log.warning("ignoring unreadable cache entry %s", path.name)
            return None
        return entry

    def put(self, kind: str, name: str, key: str, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        path = self._path(kind, name, key)
        dump_joblib(entry, path)

    def prune(self) -> int:
        """Delete the entries of other data, features or code (every entry this run read or wrote has its tag); return how many."""
        if not self.enabled or not self.directory.exists():
            return 0
        mine = f"{self.tag}-"
        stale = [p for p in self.directory.glob("*.joblib") if not p.name.startswith(mine)]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)
