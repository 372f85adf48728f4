"""The journal of ``em_inf_api``: every finished response, one JSON line each, written as it
arrives, so a run whose server died is resumed without regenerating what was done.

lm-eval's own ``--use_cache`` skips sampled requests (it keeps only greedy ones), so it cannot
resume an ``_n16`` run. Entries are keyed by :func:`em_eval.serving.protocol.journal_key` (the
whole request, its seed included); a later line for a key adds to the earlier ones (telemetry
arrives after the text). A last line cut short by a crash is ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from em_eval.local_files import cache_root

OFF = ("off", "none", "false", "0")


def default_path(model: str) -> Path:
    """``$EM_EVAL_CACHE/served/<model>-<hash>.jsonl``: one journal per served model name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/"))[-60:]
    return cache_root() / "served" / f"{slug}-{hashlib.sha256(model.encode()).hexdigest()[:10]}.jsonl"


def journal_path(value: Any, model: str) -> Path | None:
    """The ``journal=`` model arg: a path, ``off``, or unset (the default path)."""
    if value is None or value == "":
        return default_path(model)
    if str(value).lower() in OFF:
        return None
    return Path(str(value)).expanduser()


class Journal:
    """Finished responses by key; :meth:`add` appends a line at once (``path=None``: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut short when the process died
                if isinstance(row, dict) and "key" in row:
                    self.entries.setdefault(row.pop("key"), {}).update(row)

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return entry if entry is not None and "text" in entry else None

    def add(self, key: str, **fields: Any) -> None:
        self.entries.setdefault(key, {}).update(fields)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"key": key, **fields}) + "\n")
