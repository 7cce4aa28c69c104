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


def active_groups(
    extra: tuple[str, ...] | list[str] | None = None, drop: tuple[str, ...] | list[str] | None = None
) -> list[str]:
    """The groups this run builds and reads: every default group plus ``extra``, minus ``drop``.

    ``extra`` and ``drop`` default to the settings ``EXTRA_GROUPS`` and ``DROP_GROUPS``.  In
    registry order, so the feature layout does not depend on how the lists were spelled.  An
    unknown name, a group both added and dropped, or nothing left is a :class:`PipelineError`
    naming the setting.
    """
    if extra is None or drop is None:
        from core.settings import GroupSettings, load

        settings = load(GroupSettings)
        extra = settings.extra_groups if extra is None else extra
        drop = settings.drop_groups if drop is None else drop
    from core.errors import PipelineError

    for name, given in (("EXTRA_GROUPS", extra), ("DROP_GROUPS", drop)):
        unknown = [g for g in given if g not in FEATURE_GROUPS]
        if unknown:
            raise PipelineError(
                f"{name}={','.join(given)!s}: unknown feature group(s) {', '.join(unknown)}; "
                f"opt-in groups: {', '.join(OPTIONAL_GROUPS)} (registered: {', '.join(FEATURE_GROUPS)})"
            )
    both = [g for g in FEATURE_GROUPS if g in extra and g in drop]
    if both:
        raise PipelineError(
            f"EXTRA_GROUPS={','.join(extra)} and DROP_GROUPS={','.join(drop)} both name {', '.join(both)}: "
            "a group is either added or dropped"
        )
    groups = [g for g in FEATURE_GROUPS if (g not in OPTIONAL_GROUPS or g in extra) and g not in drop]
    if not groups:
        raise PipelineError(f"DROP_GROUPS={','.join(drop)} drops every feature group: the models need at least one")
    return groups


def get_group(name: str) -> FeatureFn:
    """Import and return the function of feature group ``name``."""
    try:
        target = FEATURE_GROUPS[name]
    except KeyError:
        raise KeyError(f"unknown feature group {name!r}; known: {', '.join(FEATURE_GROUPS)}") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
