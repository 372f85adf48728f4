"""Files on this machine: em-eval's cache root, sha256 of a file, JSONL rows with one clear error."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


def cache_root() -> Path:
    """Where downloads and converted models live: ``$EM_EVAL_CACHE`` or ``~/.cache/em_eval``."""
    return Path(os.environ.get("EM_EVAL_CACHE") or Path.home() / ".cache" / "em_eval")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def jsonl_rows(path: Path, error: type[Exception], fix: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; a bad line raises ``error`` naming the
    file, the line and ``fix``."""
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise error(f"{path}:{line_no} is not valid JSON ({exc.msg}); {fix}") from None
