"""Exploring the listening data: genres, track and play features, and time, from train.parquet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from core.schema import BROKEN_CLOCK_BEFORE  # broken-clock cut, the same one the time features use
from pipeline.report import plots
from pipeline.report.artifacts import Artifacts
from pipeline.report.html import esc, guard, not_available, note

__all__ = ["exploration_section"]

#: Genres with fewer plays are left out of the popularity/listen-rate correlation.
MIN_GENRE_PLAYS = 50
#: Buckets with fewer plays are not drawn: their rate is noise.
MIN_BUCKET_PLAYS = 30
#: release_date placeholders seen in the real data.
RELEASE_PLACEHOLDERS = (19000101, 30000101)


def _rates(codes: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Plays and listen rate per bucket (``codes`` index ``labels``); buckets too small to read are dropped.

    np.bincount instead of a groupby on labels: it is what keeps this section fast at 7.5M rows.
    """
    k = len(labels)
    codes = np.asarray(codes, dtype=np.int64)
    plays = np.bincount(codes, minlength=k)[:k]
    listened = np.bincount(codes, weights=np.asarray(y, dtype=float), minlength=k)[:k]
    g = pd.DataFrame({"key": list(labels), "plays": plays, "listened": listened})
    g = g[g["plays"] >= MIN_BUCKET_PLAYS].reset_index(drop=True)
    g["rate"] = g["listened"] / g["plays"]
    g["err"] = plots.binom_err(g["rate"].to_numpy(), g["plays"].to_numpy())
    return g


def _top_codes(values: np.ndarray, n: int) -> tuple[np.ndarray, list[Any]]:
    """Codes 0..n-1 for the ``n`` most frequent values (ties: smaller value first), n for the rest."""
    uniq, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.lexsort((uniq, -counts))[:n]
    rank = np.full(len(uniq), len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inv.ravel()], uniq[order].tolist()


def _rate_of(g: pd.DataFrame, key: str) -> float | None:
    hit = g.loc[g["key"] == key, "rate"]
    return float(hit.iloc[0]) if len(hit) else None


def _bar_rates(
    ax: Any, g: pd.DataFrame, title: str, base: float, *, color: str = "#2b6cb0", rotate: bool = False
) -> None:
    """Bars of listen rate per bucket with intervals, play counts and the overall rate."""
    labels = g["key"].astype(str)
    x = np.arange(len(g))
    ax.bar(x, g["rate"], color=color, alpha=0.85)
    ax.errorbar(x, g["rate"], yerr=g["err"], fmt="none", ecolor="#2d3748", capsize=2, lw=1)
    ax.axhline(base, color="#c53030", ls="--", lw=1)
    ax.set_xticks(x, labels, rotation=35 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.set_ylabel("listen rate")
    for xi, (r, n) in enumerate(zip(g["rate"], g["plays"], strict=True)):
        ax.text(
            xi,
            min(r + 0.04, 0.97),
            f"{n / 1000:.0f}k" if n >= 10_000 else f"{n:,}",
            ha="center",
            fontsize=7,
            color="#4a5568",
        )


def _genre_plots(df: pd.DataFrame, base: float) -> str:
    """Most played genres with their listen rates, and popularity against listen rate."""
    if "genre_id" not in df.columns:
        return note("train.parquet has no genre_id column.")
    g = df.groupby("genre_id", sort=True)["is_listened"].agg(["size", "mean"]).reset_index()
    g.columns = ["genre", "plays", "rate"]
    g["share"] = g["plays"] / g["plays"].sum()
    unknown = g[g["genre"] == 0]
    unknown_text = (
        f"Genre 0 ('unknown') is left out of the bars: it holds {unknown['share'].iloc[0]:.0%} of plays, listened "
        f"{unknown['rate'].iloc[0]:.0%} of the time. "
        if len(unknown)
        else ""
    )
    # Genre 0 would dwarf every real genre (about half of all plays), so the bars rank the known ones.
    top = g[g["genre"] != 0].sort_values(["plays", "genre"], ascending=[False, True]).head(20).reset_index(drop=True)
    if top.empty:
        return note("Every play has genre_id 0 (unknown): there is no genre to rank.")
    top["label"] = [f"genre {x}" for x in top["genre"]]
    top["err"] = plots.binom_err(top["rate"].to_numpy(), top["plays"].to_numpy())
    fig, (ax, ax2) = plots.figure(12, 0.27 * len(top) + 1.3, 1, 2, sharey=True)
    sns.barplot(data=top, y="label", x="share", color="#4a5568", ax=ax, errorbar=None)
    ax.set(xlabel="share of all plays", ylabel="")
    ax.set_title(f"The {len(top)} most played known genres")
    sns.barplot(data=top, y="label", x="rate", color="#2b6cb0", ax=ax2, errorbar=None)
    ax2.errorbar(top["rate"], np.arange(len(top)), xerr=top["err"], fmt="none", ecolor="#2d3748", capsize=2, lw=1)
    ax2.axvline(base, color="#c53030", ls="--", lw=1)
    ax2.set(xlabel="listen rate (95% interval)", ylabel="", xlim=(0, 1))
    ax2.set_title("Their listen rates")
    best = top.loc[top["rate"].idxmax()]
    worst = top.loc[top["rate"].idxmin()]
    out = [
        plots.img(
            fig,
            "most popular genres and their listen rates",
            f"The most played genres (ids only: the data has no genre names). {unknown_text}Among these, "
            f"{esc(best['label'])} is listened most ({best['rate']:.0%}) and {esc(worst['label'])} least "
            f"({worst['rate']:.0%}); the dashed line is the overall rate ({base:.0%}).",
        )
    ]
    known = g[(g["genre"] != 0) & (g["plays"] >= MIN_GENRE_PLAYS)]
    if len(known) >= 3:
        logp = np.log10(known["plays"].to_numpy(dtype=float))
        rate = known["rate"].to_numpy()
        pearson = float(np.corrcoef(logp, rate)[0, 1])
        spearman = float(np.corrcoef(pd.Series(logp).rank(), pd.Series(rate).rank())[0, 1])
        fig, ax = plots.figure(9, 5.5)
        sizes = 15 + 120 * (known["plays"] / known["plays"].max())
        ax.scatter(known["plays"], known["rate"], s=sizes, alpha=0.55, color="#2b6cb0", edgecolor="white", lw=0.5)
        slope, icpt = np.polyfit(logp, rate, 1)
        xs = np.linspace(logp.min(), logp.max(), 50)
        ax.plot(10**xs, icpt + slope * xs, color="#c53030", lw=1.5)
        ax.set_xscale("log")
        # Plain numbers on the log axis: "1,000" reads better than "10^3", and a narrow range still gets labels.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if logp.max() - logp.min() < 1:
            ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set(xlabel="plays of the genre (log scale)", ylabel="listen rate of the genre", ylim=(0, 1))
        ax.set_title(f"Genre popularity vs listen rate (Spearman ρ = {spearman:.2f}, n = {len(known)} genres)")
        strength = "hardly" if abs(spearman) < 0.1 else ("weakly" if abs(spearman) < 0.3 else "clearly")
        direction = "more" if spearman > 0 else "less"
        out.append(
            plots.img(
                fig,
                "genre popularity versus listen rate",
                f"One dot per known genre with at least {MIN_GENRE_PLAYS} plays (size: plays). Popular genres are "
                f"{strength} {direction} listened: Spearman ρ = {spearman:.2f}, Pearson r (log plays) = "
                f"{pearson:.2f}; red: least-squares line. Small genres scatter widely because their rates rest on "
                "few plays.",
            )
        )
    return "\n".join(out)


def _days_since_release(df: pd.DataFrame) -> np.ndarray:
    """Days from release to play; NaN for placeholder release dates and broken clocks."""
    rd = df["release_date"].to_numpy()
    uniq, inv = np.unique(rd, return_inverse=True)
    parsed = pd.to_datetime(pd.Series(uniq).astype(str), format="%Y%m%d", errors="coerce")
    secs = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float, copy=True)
    secs[np.isin(uniq, RELEASE_PLACEHOLDERS)] = np.nan
    ts = df["ts_listen"].to_numpy().astype(float)
    ts[ts < BROKEN_CLOCK_BEFORE] = np.nan
    return (ts - secs[inv]) / 86400.0


def _track_plots(df: pd.DataFrame, base: float) -> str:
    """Listen rate by duration, release age, repeat play, context, Flow and platform."""
    y = df["is_listened"].to_numpy()
    panels: list[tuple[str, pd.DataFrame, bool]] = []
    facts: list[str] = []
    if "media_duration" in df.columns:
        d = df["media_duration"].to_numpy()
        labels = ["0 (unknown)", "< 2 min", "2–3 min", "3–4 min", "4–5 min", "5–7 min", "7+ min"]
        b = np.where(d <= 0, 0, np.digitize(d, [1, 120, 180, 240, 300, 420]))
        panels.append(("Track duration", _rates(b, y, labels), True))
    if {"release_date", "ts_listen"} <= set(df.columns):
        days = _days_since_release(df)
        labels = [
            "before release",
            "< 1 month",
            "1–6 months",
            "6–12 months",
            "1–3 years",
            "3–10 years",
            "10+ years",
            "unknown",
        ]
        b = np.where(np.isnan(days), 7, np.digitize(days, [0, 30, 182, 365, 3 * 365, 10 * 365]))
        panels.append(("Release age at listening", _rates(b, y, labels), True))
    if "prior_plays" in df.columns:
        prior = df["prior_plays"].to_numpy()
        labels = ["first play", "2nd", "3rd–5th", "6th–10th", "11th+"]
        panels.append(("This user's play of the track", _rates(np.digitize(prior, [1, 2, 5, 10]), y, labels), True))
        first, again = y[prior == 0], y[prior > 0]
        if len(first) and len(again):
            facts.append(
                f"first plays of a track by a user are listened {first.mean():.0%} of the time against "
                f"{again.mean():.0%} for repeats"
            )
    if "context_type" in df.columns:
        codes, top = _top_codes(df["context_type"].to_numpy(), 10)
        panels.append(("Context type (top 10 by plays)", _rates(codes, y, [*(f"ctx {c}" for c in top), "other"]), True))
    if "listen_type" in df.columns:
        g = _rates(np.where(df["listen_type"].to_numpy() == 1, 0, 1), y, ["Flow", "not Flow"])
        panels.append(("Flow vs user-chosen", g, False))
        flow, other = _rate_of(g, "Flow"), _rate_of(g, "not Flow")
        if flow is not None and other is not None:
            facts.append(f"Flow plays are listened {flow:.0%} vs {other:.0%} for the rest")
    if "platform_name" in df.columns:
        codes, top = _top_codes(df["platform_name"].to_numpy(), 10)
        panels.append(("Platform", _rates(codes, y, [*(f"platform {c}" for c in top), "other"]), False))
    if not panels:
        return note("train.parquet lacks the track columns.")
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plots.figure(13, 3.9 * nrows, nrows, ncols)
    axes = np.atleast_1d(axes).ravel()
    for ax, (title, g, rotate) in zip(axes, panels, strict=False):
        _bar_rates(ax, g, title, base, rotate=rotate)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fact = ("; ".join(facts) + ".") if facts else ""
    return plots.img(
        fig,
        "listen rate by track and play features",
        "Listen rate (share of plays kept past 30 s) per bucket, with 95% intervals and the number of plays above "
        f"each bar (buckets with fewer than {MIN_BUCKET_PLAYS} plays are left out); the dashed line is the overall "
        "rate. Release age is days from the album's release to the play (placeholder dates 1900-01-01 / "
        "3000-01-01 count as unknown; 'before release' plays are a known quirk). "
        f"{esc(fact[:1].upper() + fact[1:])}",
    )


def _time_plots(df: pd.DataFrame) -> str:
    """Plays and listen rate by hour, weekday and day of month, Flow against the rest."""
    if "ts_listen" not in df.columns:
        return note("train.parquet has no ts_listen column.")
    ts = df["ts_listen"].to_numpy().astype(np.int64)
    valid = ts >= BROKEN_CLOCK_BEFORE
    n_broken = int((~valid).sum())
    t = ts[valid]
    y = df["is_listened"].to_numpy()[valid].astype(float)
    flow = df["listen_type"].to_numpy()[valid] == 1 if "listen_type" in df.columns else np.zeros(len(t), dtype=bool)
    days = t // 86400
    uniq, inv = np.unique(days, return_inverse=True)
    keys = {
        "hour (UTC)": ((t % 86400) // 3600, 24),
        "weekday": ((days + 3) % 7, 7),  # 1970-01-01 was a Thursday; 0 = Monday
        "day of month": (pd.to_datetime(uniq, unit="D").day.to_numpy()[inv.ravel()], 32),
    }
    weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    colors = {"Flow": "#2b6cb0", "not Flow": "#dd6b20"}
    fig, axes = plots.figure(13, 6.8, 2, 3, sharex="col")
    swings = []
    for j, (col, (v, k)) in enumerate(keys.items()):
        vol = np.bincount(v, minlength=k)
        x = np.arange(k)
        shown = x >= (1 if col == "day of month" else 0)
        axes[0, j].bar(x[shown], vol[shown] / max(len(t), 1), color="#a0aec0")
        axes[0, j].set_title(f"Plays by {col}")
        axes[0, j].set_ylabel("share of plays" if j == 0 else "")
        for name, mask in (("Flow", flow), ("not Flow", ~flow)):
            n = np.bincount(v[mask], minlength=k)
            listened = np.bincount(v[mask], weights=y[mask], minlength=k)
            ok = n >= MIN_BUCKET_PLAYS
            if not ok.any():
                continue
            rate = listened[ok] / n[ok]
            axes[1, j].plot(x[ok], rate, marker="o", ms=4, lw=1.5, color=colors[name])
            if name == "Flow" and ok.sum() > 1:
                swings.append(f"{col}: {rate.min():.0%}–{rate.max():.0%}")
        axes[1, j].set_ylabel("listen rate" if j == 0 else "")
        axes[1, j].set_xlabel(col)
        if col == "weekday":
            axes[1, j].set_xticks(range(7), weekdays)
    fig.legend(
        handles=[
            Line2D([], [], color=c, marker="o", label=k) for k, c in (("Flow", "#2b6cb0"), ("not Flow", "#dd6b20"))
        ],
        loc="outside lower center",
        ncol=2,
        fontsize=9,
    )
    if n_broken:
        broken = f"{n_broken:,} plays with broken-clock timestamps (before 2010) are excluded. "
    else:
        broken = "No broken-clock timestamp (before 2010) was found. "
    swing = ("Flow listen rate ranges over " + "; ".join(swings) + ". ") if swings else ""
    return plots.img(
        fig,
        "listening by hour, weekday and day of month",
        "Top: when plays happen; bottom: listen rate of Flow and user-chosen plays at that time (points with "
        f"fewer than {MIN_BUCKET_PLAYS} plays hidden). Hours are UTC (the data has no time zone). {broken}{swing}"
        "Time effects that differ between Flow and non-Flow plays are worth a time feature; a flat Flow line "
        "says timing matters little for the test rows.",
    )


def exploration_section(art: Artifacts, df: pd.DataFrame | None) -> str:
    """Genre, track and time plots from train.parquet (``df`` from ``load_explore``)."""
    if art.train_parquet is None:
        return not_available("data/interim/train.parquet", "data")
    if df is None or df.empty:
        return note("data/interim/train.parquet could not be read, or has no is_listened column or no rows.")
    base = float(df["is_listened"].mean())
    full = df.attrs.get("full_stats", {})
    sample = (
        f"<p>Computed on a seeded sample of users ({len(df):,} of {full.get('rows', 0):,} rows, every row of each "
        "sampled user kept so repeat plays stay exact).</p>"
        if df.attrs.get("sampled")
        else f"<p>Computed on all {len(df):,} train rows (all plays, Flow and not; the test rows are Flow session "
        "starts, so levels here are higher than the test's).</p>"
    )
    return "\n".join(
        [
            sample,
            "<h3>Which genres are played most, and are they listened?</h3>",
            guard(_genre_plots, df, base),
            "<h3>Which track and play features go with being listened?</h3>",
            guard(_track_plots, df, base),
            "<h3>When do people listen?</h3>",
            guard(_time_plots, df),
        ]
    )
