"""Which model of the bake-off wins: the declared default unless another beats it clearly.

The ranking is on the validation round (round 1: one Flow session start per user), where
the leading models are usually within the noise of each other (at 2,000 users, ~1,650 rows:
an AUC's 95% interval is about +-0.025, the paired gaps among the top four 0.001-0.005).
Taking the best round-1 AUC then picks among near-ties by chance, and the pick is what the
submission is.  So the winner is ``WINNER_DEFAULT`` (the logistic stack, whose members are
fixed in advance) unless a model beats it on round 1 with a paired 95% interval clear of
zero (the same seeded resamples for both, :func:`pipeline.scoring.paired_auc_delta`); of
the models that do, the one with the best round-1 AUC wins.  With ``WINNER_DEFAULT=none``,
or when the default is not in the bake-off (``MODELS=a,b``), the best round-1 AUC wins.

Measured (test AUC of the model the rule keeps against the round-1 best, both refit on every
train example, paired 95% on the same test rows), on the eight sets where the two rules
differed: the stack higher on seven (-0.0021 to +0.0033; the one full-size set +0.0004
[+0.0000, +0.0008]), pooled demo +0.0008 [-0.0006, +0.0021], altgen +0.0016 [-0.0006,
+0.0039] (README, "Choosing the winner").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import PipelineError
from pipeline.diagnostics import paired_deltas
from pipeline.runstore import Ranking

__all__ = ["NO_DEFAULT", "Choice", "check_default", "choose_winner"]

#: ``WINNER_DEFAULT`` value that turns the rule off: the best round-1 AUC wins.
NO_DEFAULT = "none"


@dataclass(frozen=True)
class Choice:
    """The winner and why: the rule's one-line reason and each challenger's paired gap."""

    model: str
    auc: float
    reason: str
    #: Each other model's round-1 AUC minus the default's, with its 95% interval, best first: the rows
    #: of :func:`pipeline.diagnostics.paired_deltas` (empty without a default in the bake-off).
    against_default: tuple[dict[str, Any], ...] = ()


def check_default(default: str, models: tuple[str, ...] | list[str]) -> None:
    """Raise a :class:`PipelineError` naming the setting when ``default`` is neither a model nor ``none``."""
    if default != NO_DEFAULT and default not in models:
        raise PipelineError(
            f"WINNER_DEFAULT={default!r} is not a model of the registry; valid: {', '.join(models)}, or none"
        )


def choose_winner(
    ranking: Ranking,
    preds: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    default: str,
    models: tuple[str, ...] | list[str],
    n_boot: int,
    seed: int,
) -> Choice:
    """The bake-off's winner: ``default`` unless a model beats it with a paired interval clear of zero.

    ``models`` are the registry's names (``default`` must be one of them or ``none``);
    ``preds`` the validation scores of every ranked model, ``y`` the validation labels.
    """
    check_default(default, models)
    best = ranking.winner
    if default == NO_DEFAULT:
        return Choice(best.model, best.auc, "the best round-1 AUC (WINNER_DEFAULT=none)")
    held = ranking.get(default)
    if held is None:
        return Choice(
            best.model, best.auc, f"the best round-1 AUC ({default}, the default winner, is not in this bake-off)"
        )
    gaps = tuple(paired_deltas(y, preds, default, n_boot=n_boot, seed=seed))
    by_model = {g["model"]: g for g in gaps}
    # The ranking's order (best round-1 AUC first, ties by name) picks among the clear winners.
    clear = [m for m in ranking.models if m != default and by_model[m]["lo"] > 0]
    if clear:
        g = by_model[clear[0]]
        return Choice(
            g["model"],
            ranking.get(g["model"]).auc,
            f"{g['model']} beat the default winner {default} on round 1 by {g['delta_auc']:+.4f} "
            f"[{g['lo']:+.4f}, {g['hi']:+.4f}] (paired 95%, clear of zero)",
            gaps,
        )
    if best.model == default:
        reason = f"{default}, the default winner, has the best round-1 AUC"
    else:
        top = by_model[best.model]
        reason = (
            f"{default}, the default winner: no model beat it on round 1 with a paired 95% interval clear of zero "
            f"(the best, {top['model']}: {top['delta_auc']:+.4f} [{top['lo']:+.4f}, {top['hi']:+.4f}])"
        )
    return Choice(default, held.auc, reason, gaps)
