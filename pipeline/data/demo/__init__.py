"""Realistic demo data in the exact DSG17 layout: the product's embedded default dataset.

``python -m pipeline.data.demo [--users 2000] [--seed 42] [--out-dir data/raw] [--answers data/demo/answers.csv]
[--replace-demo]`` writes ``train.csv`` and ``test.csv`` (the real files' columns, order
and plain-integer format), the hidden answers of the test rows (``sample_id,p_true,
is_listened``: the true listen probability and the label drawn from it; the pipeline
never reads them, only ``make evaluate`` does) and the marker ``.demo`` beside the CSVs
(the generator's parameters and a fingerprint of each CSV), so every stage can say "demo
data".  Same seed, same bytes.  It never writes over files it did not write itself, and
over earlier demo files only with ``--replace-demo`` (``make demo-data``).  The default
2,000 users give ~0.75M train rows in a few seconds; ``--users 19918``, the real size,
gives ~7.6M rows in about half a minute (peak ~2.3 GB).

The generative story, calibrated to ``docs/dsg17-data.md`` and to the real test file:

* **Users** have heavy-tailed activity (train rows per user: median ~197, mean ~380, a
  soft cap near 6,000), a skip propensity (a fifth are background listeners who almost
  never skip and seldom use Flow; the others spread wide), their own attitude to Flow,
  a taste (three genres with weights, favourite artists, a personal library of tracks
  they replay, favourites first), an age (18-30), a gender and a main device
  (platform_name / platform_family, correlated as in the real test) plus an occasional
  second one.  About 1% are cold starts with 1-5 train rows; ~0.3% appear only in test.
* **Catalogue**: genres -> artists -> albums -> tracks, Zipf-like popularity, new
  releases pushed.  An album has one genre (genre_id 0, unknown, on ~48% of plays), a
  release date (YYYYMMDD; year-only dates as YYYY1231/YYYY0101; placeholders 19000101
  and 30000101; pre-releases playable a few days early) and ids that grow with the date
  it entered the catalogue (media ids consecutive within an album).  Tracks have a
  duration (median ~222 s, ~0.1% 0, rare huge values up to 65,535) and a hidden appeal.
  Cardinalities grow sublinearly with ``--users`` and reach the real ones at 19,918
  (~2,700 genres, ~66k artists, ~147k albums, ~458k tracks, 74 context types).
* **Sessions**: a user's plays fall into sessions between late October and 1 December
  2016 (start hours follow the real daily rhythm in UTC), more than 10 minutes and up
  to days apart.  A session is one context or, rarely, switches: Flow (listen_type 1,
  context_type 1/5/20/23) or one of 70 non-Flow contexts (playlist, album, search,
  radio-like); ~30% of plays are Flow.  Flow mixes library tracks, tracks of the user's
  genres and a popular/new pool; albums play in track order; playlists replay the
  library.  Within a session ts_listen advances by the track's duration when it is
  listened and by 2-30 s when it is skipped.
* **Listening**: is_listened ~ Bernoulli(sigmoid(logit)), the logit adding the user's
  propensity (down-weighted in Flow, where the user's own Flow attitude counts), the
  context (Flow lower: ~0.51 against ~0.75 elsewhere; the first track of a session a
  little higher), user x genre and user x artist affinity (taste plus a hidden per-pair
  term), track and artist appeal, a known (library) track bonus, hour and weekend,
  platform, release age (new releases up), track length, fatigue deep into a session, a
  per-session mood drifting from session to session (AR(1) over the user's sessions, so
  the last sessions' skips predict the next) and a within-session mood (AR(1) over
  plays).  Hour and release age are taken at the session's intended start, before
  sessions are pushed apart so that they never overlap.
* **Quirks** on small shares of train rows: broken clocks (ts 1, 8, 79, 865; whole
  sessions in January 1980 or with the year set back to 2008-2015; ~0.12% in all),
  release-date placeholders (~0.15%), plays before the release date (~0.4%),
  media_duration 0, genre_id 0.
* **Test**, built like the real one: per user exactly one row, the first track of a new
  Flow session (context_type 1 on ~81%, 5 on ~17%, 20/23 on the rest) at a time drawn
  from the real test's day and hour profile (1 Nov - 1 Dec 2016, heaviest at the end;
  active users tend to be the late ones), more than 10 minutes after the end of the
  user's last train play; its label is drawn from the same model (session mood carried
  over from the user's last session), its probability saved as ``p_true``.  sample_id
  0..n-1 in a shuffled user order.  train.csv rows are shuffled too.

Not trivially learnable, on purpose: at full size the oracle AUC of ``p_true`` on the
test rows is ~0.78, a quick LightGBM on history features of the test rows gets ~0.70
and the user's smoothed listen rate alone ~0.65 (the real problem's honest AUC is
~0.65-0.72).

Modules, in the order of the story: ``constants`` (the calibration), ``catalogue``,
``users``, ``tracks`` (track choice per context), ``listening`` (the model of
is_listened), ``plays`` (sessions and train plays), ``quirks`` (broken clocks),
``testset``, ``tables`` (``DemoData`` and the file layout), ``generator``
(``generate``), ``summary``, ``files`` (writing and the marker) and ``__main__`` (the
CLI); ``arrays`` holds the vectorised helpers.
"""

from __future__ import annotations

from pipeline.data.demo.constants import GENERATOR_VERSION
from pipeline.data.demo.files import check_out_dir, demo_files_intact, write_demo
from pipeline.data.demo.generator import generate
from pipeline.data.demo.summary import summarize
from pipeline.data.demo.tables import DemoData

__all__ = ["DemoData", "generate", "summarize", "write_demo", "check_out_dir", "demo_files_intact", "GENERATOR_VERSION"]
