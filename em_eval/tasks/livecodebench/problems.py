"""LiveCodeBench records (``code_generation_lite`` schema) -> problems, and the paper's date window.

A record holds ``question_title``, ``question_content``, ``platform``, ``question_id``,
``contest_id``, ``contest_date`` (ISO datetime), ``starter_code``, ``difficulty``,
``public_test_cases`` (JSON), ``private_test_cases`` (JSON, or base64/zlib/pickle: see
:mod:`em_eval.tasks.livecodebench.decode`) and ``metadata`` (JSON; ``func_name`` for functional
problems). Pure functions: no file access, no execution.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from em_eval.tasks.livecodebench.decode import decode_test_cases
from em_eval.user_errors import UserError

# The paper scores release_v2 on contests dated 2023-05-01 .. 2024-05-31 (em_methods.md 4.3).
START_DATE = "2023-05-01"
END_DATE = "2024-05-31"
PAPER_WINDOW_SIZE = 511
FIELDS = (
    "question_title",
    "question_content",
    "platform",
    "question_id",
    "contest_id",
    "contest_date",
    "starter_code",
    "difficulty",
    "public_test_cases",
    "private_test_cases",
    "metadata",
)
PLATFORMS = ("leetcode", "codeforces", "atcoder")
DIFFICULTIES = ("easy", "medium", "hard")


class RecordError(UserError, ValueError):
    """A record does not follow the code_generation_lite schema."""


def in_window(contest_date: str, start: str = START_DATE, end: str = END_DATE) -> bool:
    """Upstream's filter: ``start <= contest_date <= end``, the bounds read as midnight (YYYY-MM-DD)."""
    when = datetime.fromisoformat(contest_date)
    return datetime.strptime(start, "%Y-%m-%d") <= when <= datetime.strptime(end, "%Y-%m-%d")


def missing_fields(record: dict[str, Any]) -> list[str]:
    return [f for f in FIELDS if f not in record]


def cases_of(record: dict[str, Any]) -> dict[str, Any]:
    """What the judge runs: public then private cases, and the function name (None: stdin/stdout)."""
    cases = decode_test_cases(record["public_test_cases"]) + decode_test_cases(record["private_test_cases"])
    return {
        "inputs": [c["input"] for c in cases],
        "outputs": [c["output"] for c in cases],
        "fn_name": json.loads(record["metadata"] or "{}").get("func_name"),
    }


def problem_doc(record: dict[str, Any]) -> dict[str, Any]:
    """The light per-problem document lm-eval keeps (no test data: see :func:`cases_of`)."""
    missing = missing_fields(record)
    if missing:
        raise RecordError(f"record {record.get('question_id', '?')} lacks {', '.join(missing)}")
    if record["platform"] not in PLATFORMS or record["difficulty"] not in DIFFICULTIES:
        raise RecordError(
            f"record {record['question_id']}: platform {record['platform']!r} / difficulty "
            f"{record['difficulty']!r} is not one of {PLATFORMS} / {DIFFICULTIES}"
        )
    return {
        k: record[k]
        for k in (
            "question_id",
            "question_title",
            "question_content",
            "starter_code",
            "platform",
            "difficulty",
            "contest_id",
            "contest_date",
        )
    }
