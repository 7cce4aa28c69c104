"""Feature-side settings.  Changing any of these rebuilds the examples and feature files.

Each can be overridden from the environment (``ROUNDS=3 make features``).
"""

from __future__ import annotations

import os

from pipeline.schema import BROKEN_CLOCK_BEFORE

#: A new session starts after a silence longer than this (the teams used ~10 minutes).
SESSION_GAP_MINUTES = float(os.environ.get("SESSION_GAP_MINUTES", "10"))

#: How many Flow session starts are peeled per user: round 1 (the last) is the
#: validation round, rounds 2..ROUNDS are training rounds.
ROUNDS = int(os.environ.get("ROUNDS", "5"))

#: Extra training rows: up to this many Flow plays per user, drawn (seeded) from before
#: the user's validation target and not already a round, each with past-only features.
#: Measured on the 2,000-user demo (LightGBM, validation round 1 / demo test AUC):
#: ROUNDS=5 alone 0.689 / 0.700; ROUNDS=10 0.683 / 0.703; ROUNDS=20 0.682 / 0.707;
#: +20 extra 0.688 / 0.709; +60 0.696 / 0.718; +150 0.700 / 0.719; +400 0.705 / 0.719.
#: More rows help until about 50 per user; the cap keeps heavy users from dominating.
EXTRA_FLOW_PER_USER = int(os.environ.get("EXTRA_FLOW_PER_USER", "50"))

#: ...and at most this many extra rows in all (a seeded sample), so the full-size data
#: (~20k users) stays within the time budget of the bake-off.
EXTRA_FLOW_MAX_ROWS = int(os.environ.get("EXTRA_FLOW_MAX_ROWS", "100000"))

#: Strength (in pseudo-plays) of the prior in smoothed listen rates.
PRIOR_STRENGTH = float(os.environ.get("PRIOR_STRENGTH", "20"))

#: Timestamps before this (2010-01-01 UTC) are broken clocks: no hour, no weekday.
MIN_VALID_TS = BROKEN_CLOCK_BEFORE
