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

from pipeline.io import write_text

__all__ = ["settings_of", "update_stamp"]

_MODULES = {"features": "features.params", "models": "models.params"}


def settings_of(kind: str) -> dict[str, object]:
    """The public UPPER_CASE settings of ``features.params`` or ``models.params``."""
    mod = importlib.import_module(_MODULES[kind])
    return {k: getattr(mod, k) for k in sorted(dir(mod)) if k.isupper() and not k.startswith("_")}


def update_stamp(kind: str, path: Path) -> bool:
    """Write the settings to ``path`` if they changed; return True when it was rewritten."""
    text = json.dumps(settings_of(kind), indent=2, sort_keys=True, default=str) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(text, path)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description="Rewrite a settings stamp only when the settings changed.")
    ap.add_argument("kind", choices=sorted(_MODULES))
    ap.add_argument("path", type=Path)
    args = ap.parse_args()
    if update_stamp(args.kind, args.path):
        print(f"{args.kind} settings changed: {args.path} updated")


if __name__ == "__main__":
    from pipeline.errors import run_cli

    run_cli(main)
