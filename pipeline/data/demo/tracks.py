"""Track choice per play: the user's library, the user's genres or the popular/new pool, by context kind.

Playlists mostly replay the library (favourites first), Flow leans on the popular/new
pool, radio-like contexts on the user's genres (``_SOURCE_P``).  Used for the train plays
and for the test rows alike.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.demo.catalogue import _Catalogue, _draw_in_genre, _draw_popular
from pipeline.data.demo.constants import _SOURCE_P
from pipeline.data.demo.users import _taste_slot, _Users


def _draw_tracks(
    rng: np.random.Generator, cat: _Catalogue, users: _Users, user: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    """Pick a track per play from the user's library, the user's genres or the popular/new pool."""
    n = len(user)
    p_lib = np.zeros(n)
    p_genre = np.zeros(n)
    for k, (a, b, _c) in _SOURCE_P.items():
        m = kind == k
        p_lib[m] = a
        p_genre[m] = b
    r = rng.random(n)
    src = np.where(r < p_lib, 0, np.where(r < p_lib + p_genre, 1, 2))
    media = np.empty(n, dtype=np.int64)
    m = src == 0
    pos = np.floor(users.lib_len[user[m]] * rng.random(int(m.sum())) ** 2.2).astype(np.int64)
    media[m] = users.lib_media[users.lib_off[user[m]] + pos]
    m = src == 1
    um = user[m]
    slot = _taste_slot(rng, users.taste_w[um])
    g = np.where(
        rng.random(len(um)) < 0.85, users.taste_genre[um, slot], rng.choice(len(cat.genre_p), len(um), p=cat.genre_p)
    )
    media[m] = _draw_in_genre(rng, cat, g, library=False)
    m = src == 2
    media[m] = _draw_popular(rng, cat, int(m.sum()))
    return media
