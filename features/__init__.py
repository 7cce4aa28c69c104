"""Feature groups: one function per group, registered by name.

Every group has the signature ``fn(history: History, targets: DataFrame) -> DataFrame``:
``history`` is the validated train set (see :mod:`features.history`), ``targets`` the
example rows (user, time and media columns of the row to predict, never its label).
It returns one row per target, in the targets' order, numeric columns named
``<group>_<feature>``.  Anything drawn from history uses only rows strictly before the
target's ``ts_listen`` (:mod:`features.asof` makes that the default).

The registry maps a group name to ``"module:function"``; modules are imported when a
group is asked for, so building one group never imports the others.  The group's
module file is ``features/<group>.py``, which lets Make rebuild exactly one group when
its file changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry itself is read by Make (the group list) without numpy or pandas
    import pandas as pd

    from features.history import History

    FeatureFn = Callable[[History, pd.DataFrame], pd.DataFrame]
else:
    FeatureFn = Callable[..., Any]

__all__ = ["FEATURE_GROUPS", "OPTIONAL_GROUPS", "active_groups", "get_group", "FeatureFn"]

#: name -> "module:function", in the order features are laid out for the models.
FEATURE_GROUPS: dict[str, str] = {
    "time": "features.time:time_features",
    "media": "features.media:media_features",
    "user": "features.user:user_features",
    "item": "features.item:item_features",
    "user_item": "features.user_item:user_item_features",
    "genre": "features.genre:genre_features",
    "sequence": "features.sequence:sequence_features",
    "cf": "features.cf:cf_features",
    "quality": "features.quality:quality_features",
    "neighbours": "features.neighbours:neighbours_features",
    "fm": "features.fm:fm_features",
    "content": "features.content:content_features",
    "demographics": "features.demographics:demographics_features",
    "rbm": "features.rbm:rbm_features",
}

#: Registered, tested and documented, but built only when asked for (``EXTRA_GROUPS=rbm``):
#: measured on both generators it adds nothing the default groups do not already carry.
#: (fm was opt-in until it was measured where taste shows in the labels only: README, "Taste".)
OPTIONAL_GROUPS: tuple[str, ...] = ("rbm",)


def active_groups(extra: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The groups this run builds and reads: every default group plus ``extra`` (default: ``EXTRA_GROUPS``).

    In registry order, so the feature layout does not depend on how the list was spelled.
    """
    if extra is None:
        from core.settings import GroupSettings, load

        extra = load(GroupSettings).extra_groups
    unknown = [g for g in extra if g not in FEATURE_GROUPS]
    if unknown:
        from core.errors import PipelineError

        raise PipelineError(
            f"EXTRA_GROUPS={','.join(extra)!s}: unknown feature group(s) {', '.join(unknown)}; "
            f"opt-in groups: {', '.join(OPTIONAL_GROUPS)} (registered: {', '.join(FEATURE_GROUPS)})"
        )
    return [g for g in FEATURE_GROUPS if g not in OPTIONAL_GROUPS or g in extra]


def get_group(name: str) -> FeatureFn:
    """Import and return the function of feature group ``name``."""
    try:
        target = FEATURE_GROUPS[name]
    except KeyError:
        raise KeyError(f"unknown feature group {name!r}; known: {', '.join(FEATURE_GROUPS)}") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
