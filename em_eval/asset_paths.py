"""Locate the declarative asset folders (tasks/, models/, training/, leaderboards/).

A wheel ships them as package data under ``em_eval/assets/<name>``; an editable install or a
source checkout has them beside the package at the repository root.
"""

from __future__ import annotations

from pathlib import Path

import yaml

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


def asset_names(name: str) -> list[str]:
    """Stems of the YAML files in an asset folder (preset or recipe names)."""
    return sorted(p.stem for p in asset_dir(name).glob("*.yaml"))


def read_mapping(path: Path, what: str, required: str, hint: str, error: type[Exception]) -> dict:
    """A YAML file that must be a mapping with the key ``required``; ``error`` names ``what``, the
    file and the problem (``hint`` says what the key may be)."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or required not in data:
        raise error(f"{what} {path} must be a mapping with a {required!r} key{hint}")
    return data
