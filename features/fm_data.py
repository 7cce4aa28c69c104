"""The factorization machine's data: history rows in user order with global codes of every field.

Split from :mod:`features.fm` (the group): :class:`FmData` encodes the history once per call
(user, item fields, context fields, snapshot cells) and groups rows of one user, item,
context and cell, which is what the fits sum over.  A change here rebuilds the fm group
(Makefile).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.history import History
from features.snapshots import sorted_codes as _sorted_codes

__all__ = ["FmData", "codes_of", "context_columns", "pair_codes", "sigmoid"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def codes_of(values: np.ndarray, uniq: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted ``uniq``, -1 where absent."""
    if len(uniq) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(uniq, values), len(uniq) - 1)
    return np.where(uniq[pos] == values, pos, -1)


def context_columns(context_fields: tuple[str, ...]) -> tuple[str, ...]:
    """The context columns :class:`FmData` codes: the listen type first, then ``context_fields``."""
    return tuple(dict.fromkeys(("listen_type", *context_fields)))


def pair_codes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted codes of the pairs ``(a, b)`` of non-negative codes (lexicographic order)."""
    _, codes = _sorted_codes((a.astype(np.int64) << 32) | b.astype(np.int64))
    return codes


def _combined(
    history: History,
    targets: pd.DataFrame,
    order: np.ndarray,
    cols: tuple[str, ...],
    vocab: dict[str, np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Codes of the fields ``cols`` and of their combination, for history rows in ``order``.

    Returns each field's sorted ids, each field's code per row, the targets' field codes
    (one column a field, -1 where unseen), the combination's code per row, and the
    combination -> field codes table.  A field's ids are those of the history, plus
    ``vocab[col]`` if given (ids a fitted model knows that these rows may not hold).
    """
    uniqs, codes, t_codes = [], [], []
    for col in cols:
        values = history.col(col)[order]
        uniq, c = _sorted_codes(values)
        if vocab is not None and col in vocab:
            uniq = np.union1d(uniq, np.asarray(vocab[col], dtype=uniq.dtype))
            c = np.searchsorted(uniq, values)
        uniqs.append(uniq)
        codes.append(c.astype(np.int64))
        t_codes.append(codes_of(targets[col].to_numpy(), uniq))
    combo = codes[0]
    for c in codes[1:]:
        combo = pair_codes(combo, c)
    combo = combo.astype(np.int64)
    table = np.zeros((int(combo.max()) + 1 if len(combo) else 0, len(cols)), dtype=np.int64)
    for j, c in enumerate(codes):
        table[combo, j] = c
    return uniqs, codes, np.stack(t_codes, axis=1), combo, table


class FmData:
    """History in the user index's sorted order, with global codes of every field."""

    def __init__(
        self,
        history: History,
        targets: pd.DataFrame,
        *,
        item_fields: tuple[str, ...],
        context_fields: tuple[str, ...],
        flow_weight: float,
        nonflow_weight: float,
        cell_of: Callable[[np.ndarray], np.ndarray],
        vocab: dict[str, np.ndarray] | None = None,
    ) -> None:
        idx, start, end = history.locate(targets, "user_id")
        order = idx.order
        self.start, self.end = start, end
        self.ucode = idx.codes_sorted.astype(np.int64)
        self.n_users = len(idx.uniq)
        self.user_uniq = idx.uniq
        self.t_ucode = codes_of(targets["user_id"].to_numpy().astype(np.int64), idx.uniq)
        self.ts = idx.ts_sorted
        self.y = history.y[order]
        # Item fields: global codes in id order; the item is the combination of the fields.
        self.field_uniq, _, self.t_fcodes, self.item, self.item_fields = _combined(
            history, targets, order, item_fields, vocab
        )
        self.n_items = len(self.item_fields)
        self.n_field = [len(u) for u in self.field_uniq]
        # Context fields (bias only): codes per field, and the combination's code.
        cols = context_columns(context_fields)
        self.ctx_uniq, ccodes, self.t_ccodes, self.ctx, self.ctx_fields = _combined(
            history, targets, order, cols, vocab
        )
        self.ctx_cols = cols
        self.n_ctx = len(self.ctx_fields)
        flow_code = codes_of(np.array([1]), self.ctx_uniq[0])[0]
        self.flow = ccodes[0] == flow_code
        self.ctx_flow = self.ctx_fields[:, 0] == flow_code
        self.row_weight = np.where(self.flow, flow_weight, nonflow_weight)
        self.n_ctx_field = [len(u) for u in self.ctx_uniq]
        # Rows grouped by (user, item, context, fm snapshot cell): the fits aggregate these groups.
        self.cell = cell_of(self.ts)
        cells, cell_rank = np.unique(self.cell, return_inverse=True)
        pair = pair_codes(self.ucode, self.item)
        n_c = max(self.n_ctx, 1)
        key = (pair.astype(np.int64) * n_c + self.ctx) * len(cells) + cell_rank
        uniq, gcode = _sorted_codes(key)
        self.g_cell = cells[uniq % len(cells)]
        rest = uniq // len(cells)
        self.g_ctx = rest % n_c
        first = np.full(len(uniq), -1, dtype=np.int64)
        # Every row of a group shares user and item: take them from any row of it.
        first[gcode] = np.arange(len(gcode))
        self.g_user = self.ucode[first]
        self.g_item = self.item[first]
        self.g_pos = np.bincount(gcode, weights=self.y, minlength=len(uniq))
        self.g_tot = np.bincount(gcode, minlength=len(uniq)).astype(np.float64)
