"""Settings read from the environment without failing at import.

``features/params.py`` and ``models/params.py`` read their overrides (``ROUNDS=3``,
``OPTUNA_MAX_TRIALS=50``...) while they are imported, which is before any stage's CLI
can turn an error into a plain message.  An :class:`EnvSettings` therefore keeps the
default for a malformed value and collects the complaint; :meth:`EnvSettings.validate`,
called first by every stage, raises them all as one :class:`PipelineError` (exit 2).
"""

from __future__ import annotations

import math
import os

from core.errors import PipelineError

__all__ = ["EnvSettings"]


class EnvSettings:
    """Typed readers of environment overrides that collect errors instead of raising."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.errors: list[str] = []

    def int(self, name: str, default: int | None, *, minimum: int = 0, allow_none: bool = False) -> int | None:
        """An integer (``_`` separators allowed); where ``allow_none``, ``none``/``all`` means "no cap"."""
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        if raw.strip().lower() in {"none", "all"}:
            if allow_none:
                return None
            self.errors.append(f"{name}={raw!r} must be an integer")
            return default
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            self.errors.append(f"{name}={raw!r} is not an integer")
            return default
        if value < minimum:
            self.errors.append(f"{name}={raw!r} must be >= {minimum}")
            return default
        return value

    def float(self, name: str, default: float, *, low: float, high: float = math.inf) -> float:
        """A number in ``[low, high]``."""
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            self.errors.append(f"{name}={raw!r} is not a number")
            return default
        if not low <= value <= high:
            bound = f">= {low:g}" if math.isinf(high) else f"between {low:g} and {high:g}"
            self.errors.append(f"{name}={raw!r} must be {bound}")
            return default
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``."""
        raw = os.environ.get(name, default).strip()
        if raw not in choices:
            self.errors.append(f"{name}={raw!r} must be one of {', '.join(choices)}")
            return default
        return raw

    def validate(self) -> None:
        """Raise a :class:`PipelineError` naming every malformed environment override."""
        if self.errors:
            raise PipelineError(f"bad {self.kind} setting(s) in the environment: " + "; ".join(self.errors))
