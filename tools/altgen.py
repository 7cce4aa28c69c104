#!/usr/bin/env python3
"""altgen.py -- an independent synthetic data set shaped like Deezer DSG17 `is_listened`.

Writes OUT/raw/train.csv, OUT/raw/test.csv (real column names and order, plain ints),
OUT/demo/answers.csv (sample_id,is_listened) and OUT/demo/p_true.csv (sample_id,p_true); with
--components also OUT/demo/logit_terms.csv, each term of every test row's true logit (the user,
their Flow offset, user x track affinity, user x genre, mood, ...; they sum to logit(p_true)), to
see which true effects a submission follows and which it misses.

    python altgen.py --users 2000 --seed 1 --out DIR

Two knobs change the world, for checking that a result is not a story about one of them (the
defaults are the set the README's numbers use): --taste-weight (the weight of the user x track
affinity in the logit, per sd; 0.35) and --picks (how a play is chosen inside the user's taste
clusters: "affinity", the library keeps the best of three and Flow the better of two by the
user x track affinity; "clusters", the first candidate, so what a user plays says which
clusters they like but not which tracks in them: the rest of the affinity shows in the labels only;
or "popular", every candidate drawn from the clusters by their popularity, not the user's taste,
so what a user plays says nothing of their taste: it shows in the labels only).

Story (all numbers are this script's own choices):
  * catalogue: genres -> style clusters; artists (popularity, quality, latent vector near their
    cluster centroid) -> albums (release date, unknown-genre flag) -> media (duration, quality,
    latent vector near the artist's).
  * users: a sparse Dirichlet taste over clusters plus a latent vector, a personal library of
    liked tracks, a Flow share, a main platform, a base listen propensity (a fifth are
    'passive' users who almost never skip) and a separate Flow offset.
  * plays: sessions (gaps of hours to days) split into Flow / non-Flow segments. Non-Flow plays
    come mostly from the library; Flow plays from taste (recommender keeps the better of two
    candidates by affinity, unless --picks clusters), from the charts and a little from the library.
  * label: logistic in user base (+Flow offset), user.track affinity, track quality, user x genre
    (hashed), age/gender x cluster, platform, context, hour/weekday, new release, long tracks in
    Flow, an AR(1) mood across sessions, within-session skip momentum and Flow fatigue, and
    history: last outcome on the same track, past listen rate on the same artist.
  * test: for each user one extra session after all of their train plays; its first play is
    Flow and is the test row; its label is drawn from the same model.
"""

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

FULL_USERS = 19918
DAY = 86400
T_NOV1 = 1477958400  # 2016-11-01 00:00:00 UTC
T_DEC2 = 1480636800  # 2016-12-02 00:00:00 UTC
REF_DAY = (T_DEC2 - DAY) // DAY  # 2016-12-01 as a day number

# hour-of-day (UTC) shape of activity, taken from the real test file
HOUR_W = np.array(
    [
        261,
        150,
        119,
        97,
        105,
        240,
        683,
        792,
        835,
        903,
        1002,
        1061,
        1115,
        1069,
        1095,
        1262,
        1519,
        1733,
        1573,
        1225,
        1078,
        874,
        665,
        462,
    ],
    float,
)
AGE_W = np.array([2020, 1653, 1609, 1492, 1260, 1342, 1320, 1662, 1540, 1438, 1487, 1427, 1668], float)
# (platform_name, platform_family) pairs and their shares
PLAT_PAIRS = np.array([[0, 0], [0, 2], [1, 0], [1, 2], [2, 1]])
PLAT_P = np.array([0.596, 0.032, 0.278, 0.021, 0.073])
# Flow contexts and shares (as in the real test)
FLOW_CTX = np.array([1, 5, 20, 23])
FLOW_CTX_P = np.array([0.81, 0.166, 0.013, 0.011])
# test dates: Nov 10 .. Dec 1, flat then a surge at the end (shape of the real test)
TEST_DAY_W = np.array([1.0] * 14 + [1.2, 1.45, 1.6, 1.65, 1.65, 1.95, 2.75, 5.6])

TRAIN_COLS = [
    "genre_id",
    "ts_listen",
    "media_id",
    "album_id",
    "context_type",
    "release_date",
    "platform_name",
    "platform_family",
    "media_duration",
    "listen_type",
    "user_gender",
    "user_id",
    "artist_id",
    "user_age",
    "is_listened",
]
TEST_COLS = ["sample_id"] + TRAIN_COLS[:-1]

# ----------------------------------------------------------------------------- label model
P = dict(
    b0=0.60,  # global intercept
    passive_share=0.26,
    passive_b=4.3,
    passive_bf=-3.1,  # 'never skip' users (Flow less so)
    user_sd=1.25,
    user_n=0.30,  # base propensity sd; heavier users listen a bit more
    flow_mean=-0.18,
    flow_sd=0.35,
    flow_slope=-0.7,  # Flow offset shrinks the user's base propensity toward the mean
    aff=0.35,  # per sd of user.track affinity
    qual=0.20,  # per sd of track quality
    ug=0.30,  # sd of user x genre effect
    demo=0.15,  # sd of age / gender x cluster slopes
    ctx_sd=0.35,
    mood_rho=0.85,
    mood_sd=0.35,
    mom=0.30,  # per unit of decayed recent skips in the session
    fatigue=0.12,  # Flow: per log(1+position in session)
    flow_first=-0.45,  # Flow track that opens a session (users browse before settling)
    rep_like=0.45,
    rep_skip=-0.7,
    flow_new_track=-0.10,
    art=0.8,  # artist past listen rate (centred), saturating in count
    new_rel=0.30,
    long_track=-0.5,
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def uniq_ids(rng, n, lo, hi):
    """n distinct sorted ints in [lo, hi)."""
    out = np.empty(0, np.int64)
    while out.size < n:
        out = np.unique(np.concatenate([out, rng.integers(lo, hi, int(n * 1.2) + 100)]))
    return np.sort(rng.choice(out, n, replace=False))


def hash_normal(a, b, salt):
    """Deterministic N(0,1) for integer pairs (a, b) without storing a table."""
    h = (
        a.astype(np.uint64) * np.uint64(0x9E3779B1) + b.astype(np.uint64) * np.uint64(0x85EBCA77) + np.uint64(salt)
    ) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    from scipy.special import ndtri

    return ndtri((h.astype(np.float64) + 0.5) / 2.0**32).astype(np.float32)


def days_to_yyyymmdd(days):
    d = np.datetime64("1970-01-01", "D") + days.astype("timedelta64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return (y * 10000 + m * 100 + dd).astype(np.int64)


def dot_rows(UV, TV, ui, ti, chunk=1 << 20):
    out = np.empty(len(ui), np.float32)
    for s in range(0, len(ui), chunk):
        out[s : s + chunk] = np.einsum("ij,ij->i", UV[ui[s : s + chunk]], TV[ti[s : s + chunk]])
    return out


# ----------------------------------------------------------------------------- catalogue
def make_catalogue(rng, U):
    f = U / FULL_USERS
    K, D = 30, 16
    nG = max(150, round(3300 * f))
    nA = max(400, round(125000 * f))
    nB = max(1000, round(300000 * f))
    nM = max(3000, round(1080000 * f))
    C = rng.standard_normal((K, D)).astype(np.float32)

    # genres: Zipf popularity; the K most popular each head a cluster
    gp = 1.0 / np.arange(1, nG + 1) ** 1.1
    gp[0] *= 2.5  # one dominant genre (pop)
    gclus = rng.integers(0, K, nG)
    gclus[:K] = rng.permutation(K)
    top = min(40, nG)
    gid = np.empty(nG, np.int64)
    gid[:top] = rng.choice(np.arange(1, 4000), top, replace=False)
    gid[top:] = uniq_ids(rng, nG - top, 4000, 260000)[rng.permutation(nG - top)]

    # artists
    a_pop = np.exp(1.5 * rng.standard_normal(nA))
    a_gen = np.minimum(np.searchsorted(np.cumsum(gp) / gp.sum(), rng.random(nA)), nG - 1)
    a_clus = gclus[a_gen]
    a_q = rng.normal(0, 0.45, nA).astype(np.float32)
    a_vec = (0.85 * C[a_clus] + 0.6 * rng.standard_normal((nA, D))).astype(np.float32)
    a_id = uniq_ids(rng, nA, 1, 12_000_000)[rng.permutation(nA)]

    # albums: every artist has one, the rest go to popular artists
    b_art = np.concatenate(
        [np.arange(nA), np.searchsorted(np.cumsum(a_pop**0.5) / (a_pop**0.5).sum(), rng.random(nB - nA))]
    ).astype(np.int64)
    b_art = np.minimum(b_art, nA - 1)
    r = rng.random(nB)
    age = np.where(
        r < 0.06,
        rng.uniform(25, 150, nB),  # fresh releases
        np.where(
            r < 0.30,
            rng.uniform(150, 1100, nB),  # last few years
            np.exp(rng.normal(np.log(2900), 0.75, nB)),
        ),
    )  # back catalogue
    age = np.minimum(age, 26000)
    pre = rng.random(nB) < 0.005  # released during the window
    age = np.where(pre, rng.uniform(-30, 30, nB), age)
    b_relday = (REF_DAY - np.round(age)).astype(np.int64)
    b_rel = days_to_yyyymmdd(b_relday)
    jan1 = (rng.random(nB) < 0.03) & (age > 400)
    b_rel = np.where(jan1, (b_rel // 10000) * 10000 + 101, b_rel)
    ph = rng.random(nB)
    b_rel = np.where(ph < 0.0005, 19000101, np.where(ph > 0.9996, 30000101, b_rel))
    b_relday = np.where(b_rel == 19000101, -25567, np.where(b_rel == 30000101, 10**6, b_relday))
    boost = np.where(age < 0, 0.35, np.where(age < 150, 2.5, np.where(age < 400, 1.6, 1.0)))
    b_pop = a_pop[b_art] * np.exp(0.8 * rng.standard_normal(nB)) * boost
    p_unk = np.clip(0.495 + rng.normal(0, 0.04, K), 0.3, 0.7)
    b_unk = rng.random(nB) < p_unk[a_clus[b_art]]
    # album ids grow with release date (plus noise)
    ordb = np.argsort(b_relday + rng.normal(0, 400, nB))
    b_id = np.empty(nB, np.int64)
    b_id[ordb] = uniq_ids(rng, nB, 1, 15_000_000)

    # media: every album has one, the rest by album size
    bw = np.exp(0.6 * rng.standard_normal(nB)) * b_pop**0.25
    m_alb = np.concatenate([np.arange(nB), np.searchsorted(np.cumsum(bw) / bw.sum(), rng.random(nM - nB))])
    m_alb = np.minimum(m_alb, nB - 1).astype(np.int64)
    m_art = b_art[m_alb]
    m_clus = a_clus[m_art]
    # group media by cluster (needed for taste sampling)
    o = np.argsort(m_clus, kind="stable")
    m_alb, m_art, m_clus = m_alb[o], m_art[o], m_clus[o]
    m_pop = b_pop[m_alb] * np.exp(0.9 * rng.standard_normal(nM))
    lp = np.log(m_pop)
    m_q = (a_q[m_art] + 0.25 * (lp - lp.mean()) / lp.std() + rng.normal(0, 0.55, nM)).astype(np.float32)
    m_q = (m_q - m_q.mean()) / m_q.std()
    m_vec = (a_vec[m_art] + 0.45 * rng.standard_normal((nM, D))).astype(np.float32)
    r = rng.random(nM)
    dur = np.where(
        r < 0.975,
        rng.lognormal(np.log(222), 0.19, nM),
        np.where(r < 0.998, rng.lognormal(np.log(360), 0.35, nM), rng.lognormal(np.log(1500), 0.7, nM)),
    )
    dur = np.where(rng.random(nM) < 0.002, 0, np.round(dur))
    dur = np.where(rng.random(nM) < 0.00001, 65535, np.minimum(dur, 65535)).astype(np.int32)
    ordm = np.argsort(b_relday[m_alb] + rng.normal(0, 300, nM))
    m_id = np.empty(nM, np.int64)
    m_id[ordm] = uniq_ids(rng, nM, 100_000, 137_000_000)

    cs = np.searchsorted(m_clus, np.arange(K + 1))  # cluster block bounds
    cum = np.cumsum(m_pop)  # taste sampling inside a cluster
    chart = np.argsort(-m_pop)[: max(300, nM // 200)]  # the charts: most popular tracks
    cum_chart = np.cumsum(m_pop[chart] ** 0.6)
    c_mass = np.add.reduceat(m_pop, cs[:-1]) if K > 0 else None
    return dict(
        K=K,
        D=D,
        C=C,
        gid=gid,
        gclus=gclus,
        a_gen=a_gen,
        a_clus=a_clus,
        a_id=a_id,
        b_art=b_art,
        b_rel=b_rel,
        b_relday=b_relday,
        b_unk=b_unk,
        b_id=b_id,
        m_alb=m_alb,
        m_art=m_art,
        m_clus=m_clus,
        m_q=m_q,
        m_vec=m_vec,
        dur=dur,
        m_id=m_id,
        cs=cs,
        cum=cum,
        chart=chart,
        cum_chart=cum_chart,
        c_mass=c_mass / c_mass.sum(),
        nM=nM,
    )


def sample_in_cluster(rng, cat, clus):
    cs, cum = cat["cs"], cat["cum"]
    lo = np.where(cs[clus] > 0, cum[np.maximum(cs[clus] - 1, 0)], 0.0)
    hi = cum[cs[clus + 1] - 1]
    idx = np.searchsorted(cum, lo + rng.random(len(clus)) * (hi - lo), side="right")
    return np.clip(idx, cs[clus], cs[clus + 1] - 1)


def sample_chart(rng, cat, n):
    c = cat["cum_chart"]
    return cat["chart"][np.minimum(np.searchsorted(c, rng.random(n) * c[-1], side="right"), len(c) - 1)]


def sample_taste(rng, cat, cumw_flat, users):
    K = cat["K"]
    k = np.searchsorted(cumw_flat, users + rng.random(len(users)) * 0.999999, side="right") - users * K
    k = np.clip(k, 0, K - 1)
    # skip clusters with no media (tiny catalogues)
    empty = cat["cs"][k + 1] == cat["cs"][k]
    while empty.any():
        k[empty] = rng.integers(0, K, empty.sum())
        empty = cat["cs"][k + 1] == cat["cs"][k]
    return sample_in_cluster(rng, cat, k)


# ----------------------------------------------------------------------------- main generator
PICKS = ("affinity", "clusters", "popular")


def generate(U, seed, verbose=True, order="user", components=False, taste_weight=None, picks="affinity"):
    """The data set's arrays; ``taste_weight`` (default ``P["aff"]``) and ``picks`` as in the module docstring."""
    if picks not in PICKS:
        raise ValueError(f"picks must be one of {PICKS}, not {picks!r}")
    taste_weight = P["aff"] if taste_weight is None else float(taste_weight)
    if not np.isfinite(taste_weight) or taste_weight < 0:
        raise ValueError(f"taste_weight must be a finite number >= 0, not {taste_weight!r}")
    by_affinity = picks == "affinity"
    rng = np.random.default_rng(seed)
    t0 = time.time()
    cat = make_catalogue(rng, U)
    K, D = cat["K"], cat["D"]
    if verbose:
        print(f"[altgen] catalogue: {cat['nM']} media  ({time.time() - t0:.1f}s)", file=sys.stderr)

    # ---- users (internal order: most rows first)
    z = rng.standard_normal(U)
    ln = np.log(197) + 1.25 * z
    thr = np.log(1500)
    ln = np.where(ln > thr, thr + (ln - thr) * 0.55, ln)
    thr2 = np.log(5000)
    ln = np.where(ln > thr2, thr2 + (ln - thr2) * 0.35, ln)
    n = np.maximum(1, np.round(np.exp(ln))).astype(np.int64)
    n = -np.sort(-n)
    ext_id = rng.permutation(U)
    age = 18 + np.searchsorted(np.cumsum(AGE_W) / AGE_W.sum(), rng.random(U))
    gender = (rng.random(U) < 0.433).astype(np.int64)
    main_plat = np.searchsorted(np.cumsum(PLAT_P), rng.random(U) * 0.99999)
    passive = rng.random(U) < P["passive_share"]
    phi = np.where(passive, rng.beta(0.8, 3.2, U), rng.beta(1.3, 2.4, U))  # Flow share of segments
    alpha = 3.0 * cat["c_mass"] ** 0.6 / (cat["c_mass"] ** 0.6).sum()
    g = rng.gamma(np.maximum(alpha, 1e-3), size=(U, K)) + 1e-9
    w = g / g.sum(1, keepdims=True)
    # The table the taste draws read: each user's cluster weights, or with picks "popular" the
    # clusters' popularity for everyone (the same draws, another table).
    pick_w = np.broadcast_to(cat["c_mass"], w.shape) if picks == "popular" else w
    cumw_flat = (np.cumsum(pick_w, 1) + np.arange(U)[:, None]).ravel()
    cumw_flat[K - 1 :: K] = np.arange(1, U + 1)  # exact row ends
    u_vec = (w @ cat["C"] + 0.5 * rng.standard_normal((U, D))).astype(np.float32)
    b_u = np.where(
        passive,
        P["passive_b"] + rng.normal(0, 0.5, U),
        rng.normal(0, P["user_sd"], U) + P["user_n"] * (np.log(n) - np.log(n).mean()) / np.log(n).std(),
    )
    bf_u = np.where(
        passive,
        P["passive_bf"] + rng.normal(0, 0.4, U),
        P["flow_slope"] * b_u + rng.normal(P["flow_mean"], P["flow_sd"], U),
    )
    fav_ctx = rng.integers(0, 70, U)

    # ---- rows: n train rows + 1 test row per user, user-contiguous
    ntot = n + 1
    starts = np.zeros(U + 1, np.int64)
    starts[1:] = np.cumsum(ntot)
    N = int(starts[-1])
    ru = np.repeat(np.arange(U, dtype=np.int32), ntot)
    is_test = np.zeros(N, bool)
    is_test[starts[1:] - 1] = True

    # sessions and Flow / non-Flow segments
    L = np.clip(9.0 * (n / 197.0) ** 0.4, 3, 60)
    new = rng.random(N) < (1.0 / L)[ru]
    new[starts[:-1]] = True
    new[is_test] = True
    sess = np.cumsum(new, dtype=np.int64) - 1
    sess_user = ru[new]
    S = len(sess_user)
    segnew = new | (rng.random(N) < 0.13)
    seg = np.cumsum(segnew, dtype=np.int64) - 1
    seg_user = ru[segnew]
    nseg = len(seg_user)
    seg_flow = rng.random(nseg) < phi[seg_user]
    seg_flow[is_test[segnew]] = True
    nonflow_ctx = np.array([c for c in range(74) if c not in (1, 5, 20, 23)])
    zc = 1.0 / np.arange(1, 71) ** 1.3
    gctx = nonflow_ctx[np.minimum(np.searchsorted(np.cumsum(zc) / zc.sum(), rng.random(nseg)), 69)]
    seg_ctx = np.where(rng.random(nseg) < 0.5, nonflow_ctx[fav_ctx[seg_user]], gctx)
    fctx = FLOW_CTX[np.searchsorted(np.cumsum(FLOW_CTX_P), rng.random(nseg) * 0.99999)]
    seg_ctx = np.where(seg_flow, fctx, seg_ctx)
    flow = seg_flow[seg]
    ctx = seg_ctx[seg].astype(np.int64)
    del seg, segnew, seg_flow, seg_ctx, gctx, fctx, seg_user

    # platform per session
    sp = np.where(
        rng.random(S) < 0.85, main_plat[sess_user], np.searchsorted(np.cumsum(PLAT_P), rng.random(S) * 0.99999)
    )
    plat = sp[sess]

    # ---- planned session start times
    T_test = (
        T_NOV1
        + 9 * DAY
        + DAY * np.searchsorted(np.cumsum(TEST_DAY_W) / TEST_DAY_W.sum(), rng.random(U))
        + 3600 * np.searchsorted(np.cumsum(HOUR_W) / HOUR_W.sum(), rng.random(U))
        + rng.integers(0, 3600, U)
    )
    A = T_NOV1 + rng.uniform(-3, 5, U) * DAY
    A = np.minimum(A, T_test - 3 * DAY)
    B = T_test - 7200 - rng.exponential(20 * 3600, U)
    B = np.maximum(B, A + 3600)
    pl = A[sess_user] + rng.random(S) * (B - A)[sess_user]
    hr = np.searchsorted(np.cumsum(HOUR_W) / HOUR_W.sum(), rng.random(S))
    pl2 = (pl // DAY) * DAY + hr * 3600 + rng.integers(0, 3600, S)
    ok = (pl2 >= A[sess_user]) & (pl2 <= B[sess_user])
    pl = np.where(ok, pl2, pl)
    o = np.lexsort((pl, sess_user))
    planned = pl[o]
    test_sess = np.nonzero(is_test[new])[0]
    planned[test_sess] = T_test
    planned = planned.astype(np.int64)
    if verbose:
        print(f"[altgen] {N} rows, {S} sessions ({time.time() - t0:.1f}s)", file=sys.stderr)

    # ---- item choice
    lib_k = np.round(6 + 0.3 * n).astype(np.int64)
    lib_start = np.zeros(U + 1, np.int64)
    lib_start[1:] = np.cumsum(lib_k)
    lib_user = np.repeat(np.arange(U), lib_k)
    # The candidates are drawn either way, so the rest of the random stream is the same; they are
    # scored only when the pick follows the affinity (--picks clusters keeps the first).
    cands = [sample_taste(rng, cat, cumw_flat, lib_user) for _ in range(3)]
    if by_affinity:
        scores = [dot_rows(u_vec, cat["m_vec"], lib_user, c) / D + 0.15 * cat["m_q"][c] for c in cands]
        lib = np.stack(cands)[np.argmax(np.stack(scores), 0), np.arange(len(lib_user))]
        del scores
    else:
        lib = cands[0]
    del cands, lib_user

    r = rng.random(N)
    src = np.where(
        flow, np.where(r < 0.12, 0, np.where(r < 0.60, 1, 2)), np.where(r < 0.62, 0, np.where(r < 0.92, 1, 2))
    )
    media = np.empty(N, np.int64)
    i0 = np.nonzero(src == 0)[0]
    uu = ru[i0]
    media[i0] = lib[
        lib_start[uu] + np.minimum((lib_k[uu] * rng.random(len(i0)) ** 2.2).astype(np.int64), lib_k[uu] - 1)
    ]
    i1 = np.nonzero((src == 1) & ~flow)[0]
    media[i1] = sample_taste(rng, cat, cumw_flat, ru[i1])
    i1 = np.nonzero((src == 1) & flow)[0]  # Flow: better of two by affinity
    c1 = sample_taste(rng, cat, cumw_flat, ru[i1])
    c2 = sample_taste(rng, cat, cumw_flat, ru[i1])
    if by_affinity:
        better = dot_rows(u_vec, cat["m_vec"], ru[i1], c2) > dot_rows(u_vec, cat["m_vec"], ru[i1], c1)
        media[i1] = np.where(better, c2, c1)
        del better
    else:
        media[i1] = c1
    i2 = np.nonzero(src == 2)[0]
    media[i2] = sample_chart(rng, cat, len(i2))
    del i0, i1, i2, c1, c2, uu, src, r, lib

    alb = cat["m_alb"][media]
    art = cat["m_art"][media]
    gen = cat["a_gen"][art]
    clus = cat["m_clus"][media]
    dur = cat["dur"][media]

    # ---- static part of the logit
    aff = dot_rows(u_vec, cat["m_vec"], ru, media) / D
    aff = (aff - aff.mean()) / aff.std()
    ctx_eff = rng.normal(0, P["ctx_sd"], 74)
    ctx_eff[[1, 5, 20, 23]] = [0.0, -0.15, 0.1, -0.1]
    ctx_eff[nonflow_ctx[0]] += 0.3
    age_sl = rng.normal(0, P["demo"], K)
    gen_sl = rng.normal(0, P["demo"], K)
    plat_eff = np.array([0.0, -0.05, 0.10, 0.05, -0.25])
    plat_flow = np.array([0.0, -0.10, -0.20, -0.15, 0.15])
    terms, dyn = {}, {}
    ti_ = np.nonzero(is_test)[0] if components else None

    def term(name, value):
        """``value`` (each row's share of the static logit); with --components its test rows kept as ``name``."""
        if components:
            terms[name] = terms[name] + value[ti_] if name in terms else value[ti_]
        return value

    stat = (
        P["b0"]
        + term("user", b_u[ru])
        + term("user_flow", flow * bf_u[ru])
        + term("context", ctx_eff[ctx])
        + term("user_track_affinity", taste_weight * aff)
        + term("track_quality", P["qual"] * cat["m_q"][media])
        + term("user_genre", P["ug"] * hash_normal(ru, gen, seed * 7919 + 13))
        + term("demographics", age_sl[clus] * (age[ru] - 24) / 6.0)
        + term("demographics", gen_sl[clus] * (2 * gender[ru] - 1))
        + term("platform", plat_eff[plat])
        + term("platform", flow * plat_flow[plat])
        + term("long_track", flow * np.where(dur > 480, P["long_track"], 0.0))
    ).astype(np.float32)
    if components:  # the rest of the test rows' terms come from the pass below
        dyn = {k: np.zeros(N, np.float32) for k in ("time", "mood", "same_track", "same_artist", "new_release")}
    del aff, clus

    # history pointers: previous row of the same user on the same track / artist
    def prev_ptr(key):
        o = np.argsort(key, kind="stable")
        ks = key[o]
        prev = np.full(N, -1, np.int64)
        same = ks[1:] == ks[:-1]
        prev[o[1:][same]] = o[:-1][same]
        return prev

    prevT = prev_ptr(ru.astype(np.int64) * cat["nM"] + media)
    prevA = prev_ptr(ru.astype(np.int64) * len(cat["a_id"]) + art)
    rel_day = cat["b_relday"][alb]
    if verbose:
        print(f"[altgen] items and static logit done ({time.time() - t0:.1f}s)", file=sys.stderr)

    # ---- sequential pass: step k handles the k-th row of every user that has one
    hour_eff = (0.20 * np.cos(2 * np.pi * (np.arange(24) - 21) / 24)).astype(np.float32)
    hour_flow = (0.15 * np.cos(2 * np.pi * (np.arange(24) - 3) / 24) - 0.1).astype(np.float32)
    wd_eff = np.array([-0.05, -0.05, 0.0, -0.05, 0.05, 0.12, 0.10], np.float32)  # Mon..Sun
    u_t = rng.random(N, dtype=np.float32)
    u_l = rng.random(N, dtype=np.float32)
    e_m = rng.standard_normal(N, dtype=np.float32)
    label = np.zeros(N, np.int8)
    prob = np.zeros(N, np.float32)
    ts = np.zeros(N, np.int64)
    art_n = np.zeros(N, np.int32)
    art_l = np.zeros(N, np.int32)
    t_prev = np.full(U, -(10**12), np.int64)
    lab_prev = np.ones(U, np.int8)
    dur_prev = np.zeros(U, np.int64)
    mood = rng.normal(0, P["mood_sd"], U).astype(np.float32)
    mom = np.zeros(U, np.float32)
    spos = np.zeros(U, np.float32)
    rho, msd = P["mood_rho"], P["mood_sd"] * np.sqrt(1 - P["mood_rho"] ** 2)
    act = np.searchsorted(-ntot, -np.arange(int(ntot[0])), side="left")
    for k in range(int(ntot[0])):
        m = int(act[k])
        idx = starts[:m] + k
        nw = new[idx]
        fl = flow[idx]
        ut = u_t[idx]
        tp = t_prev[:m]
        gap = np.where(lab_prev[:m] == 1, np.maximum(dur_prev[:m], 35) * (0.7 + 0.3 * ut), 4 + 26 * ut)
        gap = np.minimum(gap + np.where(ut > 0.96, 400 * (ut - 0.96) / 0.04, 0), 1500)
        tt = np.where(
            nw, np.maximum(planned[sess[idx]], tp + 1800 + (5400 * ut).astype(np.int64)), tp + gap.astype(np.int64)
        )
        h = ((tt // 3600) + 1) % 24
        wd = ((tt // DAY) + 3) % 7
        mood[:m] = np.where(nw, rho * mood[:m] + msd * e_m[idx], mood[:m])
        mom[:m] = np.where(nw, 0, mom[:m])
        spos[:m] = np.where(nw, 0, spos[:m] + 1)
        z = stat[idx] + hour_eff[h] + fl * hour_flow[h] + wd_eff[wd] + mood[:m] - P["mom"] * mom[:m]
        if components:
            dyn["time"][idx] = hour_eff[h] + fl * hour_flow[h] + wd_eff[wd]
            dyn["mood"][idx] = mood[:m] - P["mom"] * mom[:m]
        z -= fl * P["fatigue"] * np.log1p(spos[:m])
        z += (fl & nw) * P["flow_first"]
        pt = prevT[idx]
        has = pt >= 0
        last = label[np.where(has, pt, 0)]
        rep = np.where(has, np.where(last == 1, P["rep_like"], P["rep_skip"]), fl * P["flow_new_track"])
        z += rep
        pa = prevA[idx]
        hasa = pa >= 0
        pa0 = np.where(hasa, pa, 0)
        an = np.where(hasa, art_n[pa0] + 1, 0)
        al = np.where(hasa, art_l[pa0] + label[pa0], 0)
        art_n[idx] = an
        art_l[idx] = al
        art_term = P["art"] * ((al + 1.0) / (an + 2.0) - 0.6) * (np.minimum(an, 6) / 6.0)
        z += art_term
        dsr = tt // DAY - rel_day[idx]
        new_term = np.where((dsr >= -30) & (dsr < 60), P["new_rel"] * (0.5 + 0.5 * fl), 0.0)
        z += new_term
        if components:
            dyn["same_track"][idx], dyn["same_artist"][idx], dyn["new_release"][idx] = rep, art_term, new_term
        p = sigmoid(z.astype(np.float32))
        lab = (u_l[idx] < p).astype(np.int8)
        label[idx] = lab
        prob[idx] = p
        ts[idx] = tt
        mom[:m] = 0.55 * mom[:m] + (1 - lab)
        lab_prev[:m] = lab
        dur_prev[:m] = dur[idx]
        t_prev[:m] = tt
    if verbose:
        print(f"[altgen] labels and times done ({time.time() - t0:.1f}s)", file=sys.stderr)

    # ---- broken clocks on a tiny fraction of train rows
    br = np.nonzero((rng.random(N) < 2.5e-4) & ~is_test)[0]
    kind = rng.random(len(br))
    bad = np.where(
        kind < 0.12,
        rng.choice([1, 8, 79, 865], len(br)),
        np.where(
            kind < 0.40, 316_000_000 + rng.integers(0, 200_000, len(br)), rng.integers(1199145600, 1451606400, len(br))
        ),
    )  # 2008..2015
    ts[br] = bad

    del stat, prevT, prevA, art_n, art_l, u_t, u_l, e_m, new, sess, rel_day
    tr = np.nonzero(~is_test)[0]
    if order == "user":  # grouped by user_id, each user's rows in play order
        tr = tr[np.argsort(ext_id[ru[tr]], kind="stable")]
    elif order == "random":
        tr = np.random.default_rng(seed + 10007).permutation(tr)
    elif order == "time":
        tr = tr[np.argsort(ts[tr], kind="stable")]
    ti = np.nonzero(is_test)[0]
    sid = rng.permutation(U)  # shuffled test order
    oo = np.argsort(sid)
    getters = dict(
        genre_id=lambda: np.where(cat["b_unk"][alb], 0, cat["gid"][gen]),
        ts_listen=lambda: ts,
        media_id=lambda: cat["m_id"][media],
        album_id=lambda: cat["b_id"][alb],
        context_type=lambda: ctx,
        release_date=lambda: cat["b_rel"][alb],
        platform_name=lambda: PLAT_PAIRS[plat, 0],
        platform_family=lambda: PLAT_PAIRS[plat, 1],
        media_duration=lambda: dur,
        listen_type=lambda: flow,
        user_gender=lambda: gender[ru],
        user_id=lambda: ext_id[ru],
        artist_id=lambda: cat["a_id"][art],
        user_age=lambda: age[ru],
        is_listened=lambda: label,
    )
    train = {}
    test = {"sample_id": np.arange(U, dtype=np.int32)}
    lab_test = None
    for c, fn in getters.items():
        v = np.asarray(fn()).astype(np.int32)
        train[c] = v[tr]
        if c == "is_listened":
            lab_test = v[ti][oo]
        else:
            test[c] = v[ti][oo]
        del v
    answers = lab_test
    p_true = prob[ti][oo]
    extra = dict(prob_train=prob[tr], passive=passive, n=n)
    if components:
        terms.update({k: v[ti] for k, v in dyn.items()})
        logit = pd.DataFrame({k: np.asarray(v, np.float64)[oo] for k, v in terms.items()})
        logit.insert(0, "sample_id", np.arange(U, dtype=np.int32))
        logit["session_start"] = P["b0"] + P["flow_first"]  # every test row opens a Flow session
        extra["logit_terms"] = logit
    return train, test, answers, p_true, extra


def auc(y, s):
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    r = rankdata(s)
    n1, n0 = y.sum(), (~y).sum()
    return (r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def write_csv(path, cols, names):
    import pyarrow as pa
    import pyarrow.csv as pc

    tbl = pa.table({c: cols[c] for c in names})
    with open(path, "wb") as fh:
        fh.write((",".join(names) + "\n").encode())
        pc.write_csv(tbl, fh, pc.WriteOptions(include_header=False, batch_size=1 << 16))


def check(out, U):
    tr = pd.read_csv(os.path.join(out, "raw", "train.csv"), engine="pyarrow")
    te = pd.read_csv(os.path.join(out, "raw", "test.csv"), engine="pyarrow")
    an = pd.read_csv(os.path.join(out, "demo", "answers.csv"))
    assert list(tr.columns) == TRAIN_COLS, tr.columns
    assert list(te.columns) == TEST_COLS, te.columns
    assert list(an.columns) == ["sample_id", "is_listened"]
    for d in (tr, te, an):
        assert all(pd.api.types.is_integer_dtype(t) for t in d.dtypes), d.dtypes
    assert (te.sample_id.values == np.arange(U)).all() and (an.sample_id.values == np.arange(U)).all()
    assert te.user_id.nunique() == U and set(te.user_id) == set(range(U))
    assert set(tr.is_listened.unique()) <= {0, 1} and set(an.is_listened.unique()) <= {0, 1}
    last = tr.groupby("user_id").ts_listen.max()
    tt = te.set_index("user_id").ts_listen
    gap = tt - last.reindex(tt.index)
    nohist = gap.isna().sum()
    assert (gap.dropna() > 1800).all(), gap.min()
    assert te.ts_listen.max() < T_DEC2 + 2 * DAY
    return dict(
        min_gap_h=gap.min() / 3600,
        users_no_train=nohist,
        test_days=pd.to_datetime(te.ts_listen, unit="s").dt.date.min(),
    )


def _weight(text):
    """--taste-weight: a finite number >= 0."""
    try:
        w = float(text)
    except ValueError:
        w = float("nan")
    if not np.isfinite(w) or w < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--order",
        choices=["user", "time", "random"],
        default="user",
        help="train row order: grouped by user_id (default), by ts_listen, or shuffled",
    )
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument(
        "--taste-weight",
        type=_weight,
        default=P["aff"],
        help=f"weight of the user x track affinity in the logit, per sd (default {P['aff']}; the README's taste-heavy set: 1.0)",
    )
    ap.add_argument(
        "--picks",
        choices=PICKS,
        default="affinity",
        help="plays chosen inside the user's taste clusters by affinity (default) or not ('clusters': beyond the clusters, taste shows in the labels only), or not by taste at all ('popular': taste shows in the labels only)",
    )
    ap.add_argument(
        "--components",
        action="store_true",
        help="also write OUT/demo/logit_terms.csv: each term of every test row's true logit (they sum to it)",
    )
    a = ap.parse_args()
    t0 = time.time()
    train, test, answers, p_true, extra = generate(
        a.users, a.seed, order=a.order, components=a.components, taste_weight=a.taste_weight, picks=a.picks
    )
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "demo"), exist_ok=True)
    write_csv(os.path.join(a.out, "raw", "train.csv"), train, TRAIN_COLS)
    write_csv(os.path.join(a.out, "raw", "test.csv"), test, TEST_COLS)
    pd.DataFrame({"sample_id": test["sample_id"], "is_listened": answers}).to_csv(
        os.path.join(a.out, "demo", "answers.csv"), index=False
    )
    pd.DataFrame({"sample_id": test["sample_id"], "p_true": np.round(p_true, 6)}).to_csv(
        os.path.join(a.out, "demo", "p_true.csv"), index=False
    )
    if a.components:
        extra["logit_terms"].to_csv(os.path.join(a.out, "demo", "logit_terms.csv"), index=False, float_format="%.6f")
    t_gen = time.time() - t0

    y = train["is_listened"]
    fl = train["listen_type"] == 1
    uid = train["user_id"]
    cnt = np.bincount(uid, minlength=a.users)
    ur = np.bincount(uid, weights=y, minlength=a.users)[cnt > 0] / cnt[cnt > 0]
    ts = train["ts_listen"]
    rel = train["release_date"]
    pre = np.mean(days_to_yyyymmdd(ts // DAY) < rel)
    broken = np.mean(ts < T_NOV1 - 60 * DAY)
    print(
        f"rows {len(y):,}  users {a.users:,}  rows/user median {np.median(cnt):.0f} mean {cnt.mean():.0f} max {cnt.max()}"
    )
    print(
        f"listen rate overall {y.mean():.3f}  Flow {y[fl].mean():.3f}  non-Flow {y[~fl].mean():.3f}  Flow share {fl.mean():.3f}"
    )
    print(f"per-user rate mean {ur.mean():.3f} sd {ur.std():.3f}  share >=0.95 {np.mean(ur >= 0.95):.3f}")
    print(
        f"genre 0 share {np.mean(train['genre_id'] == 0):.3f}  distinct media {len(np.unique(train['media_id'])):,} "
        f"albums {len(np.unique(train['album_id'])):,} artists {len(np.unique(train['artist_id'])):,} "
        f"genres {len(np.unique(train['genre_id'])):,}  contexts {len(np.unique(train['context_type']))}"
    )
    print(
        f"media_duration median {np.median(train['media_duration']):.0f}  plays before release {pre:.4f}  "
        f"broken-clock rows {broken:.5f}  ts Nov-2016 share {np.mean((ts >= T_NOV1) & (ts < T_DEC2 - DAY)):.3f}"
    )
    print(
        f"test rows {len(answers):,}  test listen rate {answers.mean():.3f}  test genre-0 {np.mean(test['genre_id'] == 0):.3f}  "
        f"test distinct media {len(np.unique(test['media_id'])):,}"
    )
    print(
        f"oracle AUC test {auc(answers, p_true):.4f}  (train Flow {auc(y[fl], extra['prob_train'][fl]):.4f}, "
        f"train all {auc(y, extra['prob_train']):.4f})"
    )
    if not a.no_check:
        info = check(a.out, a.users)
        print(
            f"checks ok: one test row per user, test after all train plays (min gap {info['min_gap_h']:.2f} h), "
            f"users without train rows {info['users_no_train']}, first test day {info['test_days']}"
        )
    print(f"time {t_gen:.1f}s generate+write, {time.time() - t0:.1f}s total")


if __name__ == "__main__":
    main()
