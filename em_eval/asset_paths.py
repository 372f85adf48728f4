"""Locate the declarative asset folders (tasks/, models/, training/, leaderboards/).

A wheel ships them as package data under ``em_eval/assets/<name>``; an editable install or a
source checkout has them beside the package at the repository root.
"""

from __future__ import annotations

from pathlib import Path

ASSET_DIRS = ("tasks", "models", "training", "leaderboards")


def asset_dir(name: str) -> Path:
    """Return the folder holding the named asset kind."""
    if name not in ASSET_DIRS:
        raise ValueError(f"unknown asset folder {name!r}; expected one of {ASSET_DIRS}")
    here = Path(__file__).resolve().parent
    for candidate in (here / "assets" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"em-eval's {name}/ folder is missing next to {here}; reinstall with `pip install em-eval` "
        "or `pip install -e .` from a full checkout"
    )
