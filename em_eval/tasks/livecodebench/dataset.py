"""Reading LiveCodeBench JSONL files into light documents, and one record back for judging.

Each document keeps the prompt fields and where its record lies (file and byte offset), not the
test data (hundreds of MB for release_v2): the judge reads and decodes the record again. Every
record's test cases are decoded once at load (safely, :mod:`em_eval.tasks.livecodebench.decode`),
so a corrupt or malicious file is refused before any generation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

from em_eval.data import DataFileError
from em_eval.local_files import file_sha256
from em_eval.tasks.livecodebench.decode import UnsafePickleError
from em_eval.tasks.livecodebench.problems import (
    END_DATE,
    PAPER_WINDOW_SIZE,
    START_DATE,
    RecordError,
    cases_of,
    in_window,
    problem_doc,
)
from em_eval.tasks.livecodebench.source import RELEASE_V2, REVISION, SHA256

log = logging.getLogger(__name__)


def _lines(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset, record) of each non-blank line."""
    with open(path, "rb") as fh:
        line_no, offset = 0, 0
        for line in fh:
            line_no += 1
            if line.strip():
                try:
                    yield line_no, offset, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFileError(f"{path}:{line_no} is not valid JSON ({exc.msg}); replace the file") from None
                except RecursionError:
                    raise DataFileError(
                        f"{path}:{line_no} nests too deeply to be a LiveCodeBench record; replace the file"
                    ) from None
            offset += len(line)


def documents(files: list[Path], start: str = START_DATE, end: str = END_DATE) -> list[dict[str, Any]]:
    """The problems dated ``start`` .. ``end`` (inclusive), sorted by ``question_id`` as upstream."""
    digests = {str(f): file_sha256(f) for f in files}
    unpinned = [f"{f} (sha256 {d})" for f, d in digests.items() if d not in SHA256.values()]
    if unpinned:
        log.warning(
            "LiveCodeBench: %s is not a pinned release_v2 file (%s at %s): scores are not comparable with the paper's",
            ", ".join(unpinned),
            " / ".join(RELEASE_V2),
            REVISION[:12],
        )
    docs = []
    for path in files:
        for line_no, offset, record in _lines(path):
            try:
                doc = problem_doc(record)
                if not in_window(doc["contest_date"], start, end):
                    continue
                n_tests = len(cases_of(record)["inputs"])
            except (RecordError, UnsafePickleError, ValueError, TypeError) as exc:
                raise DataFileError(
                    f"{path}:{line_no}: {exc}. Use the upstream files (see em_eval.tasks.livecodebench.source)"
                ) from None
            docs.append(
                {
                    **doc,
                    "n_tests": n_tests,
                    "record_file": str(path),
                    "record_offset": offset,
                    "data_sha256": digests[str(path)],
                }
            )
    docs.sort(key=lambda d: d["question_id"])
    for doc in docs:
        doc["window_size"] = len(docs)
    log.info(
        "LiveCodeBench: %d problems dated %s..%s in %s (sha256 %s); the paper scores %d",
        len(docs),
        start,
        end,
        ", ".join(digests),
        ", ".join(digests.values()),
        PAPER_WINDOW_SIZE,
    )
    return docs


def record_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The full record a document came from."""
    with open(doc["record_file"], "rb") as fh:
        fh.seek(doc["record_offset"])
        return json.loads(fh.readline())
