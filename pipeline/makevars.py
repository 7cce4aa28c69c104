"""What the Makefile knows of the code: paths, feature groups and settings stamps, from one place.

``python -m pipeline.makevars`` prints ``NAME=value`` pairs (no spaces inside a value)
that the Makefile evaluates while it parses: every path of :mod:`core.config`, the
feature groups of :data:`features.FEATURE_GROUPS` and the stamp file of each settings
kind, whose name carries the hash of the current values (:mod:`core.settings`).  It
writes nothing, so ``make -n`` writes nothing either.  A malformed setting prints one
``ERROR: ...`` line and exits 2; the Makefile turns it into ``$(error ...)``.

``python -m pipeline.makevars --write-stamp PATH`` is the recipe of a stamp rule: it
writes the settings of PATH's kind and removes that kind's other stamps, so setting a
value back later rebuilds too.

Standard library only: it runs under the system ``python3`` before ``.venv`` exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core import config
from core.errors import PipelineError
from core.settings import KINDS, load_all, settings_hash, settings_json
from features import active_groups

__all__ = ["make_vars", "stamp_path", "write_stamp"]

#: Make variable -> path of core.config.
_PATHS = {
    "RAW_TRAIN": config.RAW_TRAIN,
    "RAW_TEST": config.RAW_TEST,
    "TRAIN_PQ": config.TRAIN_PARQUET,
    "TEST_PQ": config.TEST_PARQUET,
    "SUMMARY": config.DATA_SUMMARY,
    "EX_TRAIN": config.EXAMPLES_TRAIN,
    "EX_TEST": config.EXAMPLES_TEST,
    "EX_NOW": config.EXAMPLES_NOW,
    "FEAT": config.FEATURES_DIR,
    "ART": config.MODELS_DIR,
    "STAMPS": config.STAMPS,
    "SELECTION": config.SELECTION,
    "TUNED": config.TUNED,
    "WINNER": config.WINNER,
    "ABLATION": config.ABLATION,
    "REPORT": config.REPORT,
    "RECO": config.RECOMMENDATIONS,
    "RECO_EVAL": config.RECOMMEND_EVAL,
    "RECO_STATE": config.RECOMMEND_STATE / "state.joblib",
    "LATEST": config.LATEST,
}


def _shown(path: Path) -> str:
    """A path relative to the project when inside it (what Make prints), else absolute."""
    path = Path(path)
    return str(path.relative_to(config.ROOT)) if path.is_relative_to(config.ROOT) else str(path)


def stamp_path(kind: str, value: object) -> Path:
    """The stamp file of ``kind`` for settings ``value``: ``<STAMPS>/<kind>-<hash>.json``."""
    return config.STAMPS / f"{kind}-{settings_hash(value)}.json"


def make_vars() -> list[str]:
    """``NAME=value`` lines for the Makefile (raises PipelineError on a malformed setting)."""
    kinds = load_all()
    out = [f"{name}={_shown(path)}" for name, path in _PATHS.items()]
    out.append("GROUPS=" + ",".join(active_groups(kinds["groups"].extra_groups, kinds["groups"].drop_groups)))
    out += [f"{kind.upper()}_STAMP={_shown(stamp_path(kind, value))}" for kind, value in kinds.items()]
    return out


def write_stamp(path: Path) -> None:
    """Write the current settings of the kind named by ``path`` and drop that kind's older stamps."""
    path = Path(path)
    kind = path.name.split("-", 1)[0]
    if kind not in KINDS:
        raise PipelineError(f"{path}: not a settings stamp (kinds: {', '.join(KINDS)})")
    value = load_all()[kind]
    if path.resolve() != stamp_path(kind, value).resolve():
        raise PipelineError(f"the {kind} settings changed while make was running: run make again")
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{kind}-*.json"):
        if old.name != path.name:
            old.unlink()
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(settings_json(value), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 2 and argv[0] == "--write-stamp":
            write_stamp(Path(argv[1]))
            return 0
        if argv:
            print("usage: python -m pipeline.makevars [--write-stamp PATH]", file=sys.stderr)
            return 2
        print(" ".join(make_vars()))
    except PipelineError as exc:
        print(f"ERROR: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
