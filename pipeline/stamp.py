"""Parameter stamps: JSON files whose timestamp changes only when the settings change.

Make cannot see environment overrides (``ROUNDS=3 make features``) or edits to a
settings module's values.  ``python -m pipeline.stamp features PATH`` writes the
current feature settings to PATH *only if they differ* from what is there, so the
file's mtime moves exactly when a rebuild is needed; Make rules then depend on the
stamp instead of on the settings module.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from core.io import write_text

__all__ = ["settings_of", "update_stamp"]

_MODULES = {"features": "features.params", "models": "models.params", "select": "models.params"}
#: The selection stage reads only these model settings; the rest (Optuna budgets, row
#: budgets of the bake-off) must not re-run it.
_SELECT_PREFIXES = ("SELECT_", "PERMUTATION_", "N_JOBS")


def settings_of(kind: str) -> dict[str, object]:
    """The public UPPER_CASE settings of a kind, plus the global SEED."""
    from core import config

    mod = importlib.import_module(_MODULES[kind])
    mod.validate()  # a malformed environment override is a plain message, not a traceback
    names = [k for k in sorted(dir(mod)) if k.isupper() and not k.startswith("_")]
    if kind == "select":
        names = [k for k in names if k.startswith(_SELECT_PREFIXES)]
    return {**{k: getattr(mod, k) for k in names}, "SEED": config.SEED}


def update_stamp(kind: str, path: Path) -> bool:
    """Write the settings to ``path`` if they changed; return True when it was rewritten."""
    text = json.dumps(settings_of(kind), indent=2, sort_keys=True, default=str) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(text, path)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description="Rewrite settings stamps only when the settings changed.")
    ap.add_argument("stamps", nargs="+", metavar="KIND=PATH", help=f"KIND is one of {', '.join(sorted(_MODULES))}")
    args = ap.parse_args()
    pairs = []
    for item in args.stamps:
        kind, _, path = item.partition("=")
        if kind not in _MODULES or not path:
            ap.error(f"expected KIND=PATH with KIND in {sorted(_MODULES)}, got {item!r}")
        settings_of(kind)  # validate every kind first: a bad setting rewrites no stamp at all
        pairs.append((kind, Path(path)))
    changed = [kind for kind, path in pairs if update_stamp(kind, path)]
    if changed:
        # One line: Make shows it while reading the Makefile.
        print(f"settings changed ({', '.join(changed)}): what depends on them will be rebuilt")


if __name__ == "__main__":
    from core.errors import run_cli

    run_cli(main)
