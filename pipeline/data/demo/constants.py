"""Calibration of the demo story: sizes, the real test's time profile, contexts, the listening model's weights.

Every number the story is tuned with lives here, so a recalibration touches one file
(and bumps ``GENERATOR_VERSION``).  The targets are in ``docs/dsg17-data.md``.
"""

from __future__ import annotations

import numpy as np

#: Bump when the story changes, so a marker tells which generator wrote the files.
GENERATOR_VERSION = 1

FULL_USERS = 19_918  # the real number of users: cardinalities are calibrated at this size
MAX_USERS = 50_000  # ~19M train rows, ~6 GB of memory

_DAY = 86_400
_NOV1 = 1_477_958_400  # 2016-11-01 00:00:00 UTC
_WINDOW_FLOOR = _NOV1 - 4 * _DAY  # no intended session before 28 Oct 2016
_JAN1980 = 315_532_800  # 1980-01-01 00:00:00 UTC
_MIN_GAP = 660  # seconds of silence between sessions: always more than the 10-minute rule

# Real test profile: rows per day from 1 Nov to 1 Dec 2016, and share per UTC hour.
_TEST_DAY_WEIGHTS = np.array(
    [452, 510, 475, 486, 611, 510, 449, 420, 418, 499, 490, 553, 500, 416, 418, 424]
    + [438, 541, 607, 487, 413, 495, 536, 588, 715, 786, 807, 802, 954, 1351, 2758],
    dtype=float,
)
_HOUR_WEIGHTS = np.array(
    [13, 8, 6, 5, 5, 12, 34, 40, 42, 45, 50, 53, 56, 54, 55, 63, 76, 87, 79, 62, 54, 44, 33, 23], dtype=float
)
_AGE_WEIGHTS = np.array([101, 83, 81, 75, 63, 67, 66, 83, 77, 72, 75, 72, 84], dtype=float)  # ages 18..30

# Contexts.  Kinds drive track choice and listening: 0 Flow, 1 playlist, 2 album, 3 search, 4 radio-like.
_FLOW, _PLAYLIST, _ALBUM, _SEARCH, _RADIO = range(5)
_FLOW_CONTEXTS = np.array([1, 5, 20, 23])
_FLOW_CONTEXT_P = np.array([0.811, 0.167, 0.012, 0.010])
_NON_FLOW_CONTEXTS = np.array([c for c in range(80) if c not in set(_FLOW_CONTEXTS.tolist())][:70])
_NON_FLOW_P = (np.arange(70) + 1.0) ** -1.35
_NON_FLOW_P /= _NON_FLOW_P.sum()
_NON_FLOW_KIND = np.array(([_PLAYLIST, _ALBUM, _SEARCH, _PLAYLIST, _RADIO, _ALBUM, _SEARCH] * 10)[:70])
# Where a play's track comes from, per kind: library, user's genres, popular/new.
_SOURCE_P = {
    _FLOW: (0.18, 0.37, 0.45),
    _PLAYLIST: (0.75, 0.20, 0.05),
    _SEARCH: (0.35, 0.30, 0.35),
    _RADIO: (0.30, 0.50, 0.20),
}

# The listening model (logit scale).  Calibrated so that the train listen rate is ~0.68
# (Flow ~0.52, non-Flow ~0.75) and the oracle AUC of the test rows is ~0.77.
_INTERCEPT = -0.44
_NEVER_SKIP_SHARE, _NEVER_SKIP_MEAN, _PROPENSITY_SD = 0.21, 4.5, 1.9
_FLOW_PROPENSITY_WEIGHT, _FLOW_ATTITUDE_SD = 0.25, 0.55
_KIND_EFFECT = np.array([-0.47, 0.30, 0.40, 0.55, -0.15])  # Flow, playlist, album, search, radio
_FIRST_OF_SESSION = 0.15
_KNOWN_TRACK = 0.7
_FAV_ARTIST = 0.45
_GENRE_TASTE = 0.9
#: Rank of the optional latent user x artist taste (``generate(latent_taste=...)``).
_LATENT_RANK = 8
_PAIR_GENRE_SD, _PAIR_ARTIST_SD = 0.25, 0.2
_TRACK_APPEAL_SD, _ARTIST_QUALITY_SD = 0.3, 0.25
_ARTIST_POP_SD = 1.8
_PLATFORM_NAME_EFFECT = np.array([0.0, 0.12, -0.20])
_PLATFORM_FAMILY_EFFECT = np.array([0.0, 0.0, -0.25])
_SESSION_MOOD_RHO, _SESSION_MOOD_SD = 0.6, 0.4
_PLAY_MOOD_RHO, _PLAY_MOOD_SD = 0.85, 0.25
