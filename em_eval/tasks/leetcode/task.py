"""lm-eval hooks for ``em_leetcode`` (the paper's set) and ``em_leetcodedataset``.

``em_leetcode``: the 180 LeetCode contest problems of 2023-07..2024-01 that the paper scores
(DeepSeek-Coder's ``20240121-Jul.jsonl``), the paper's prompt (Eurus system prompt, set as the
task description; user = ``prompt_sft`` + a "present the code" line), the paper's extraction
(:func:`em_eval.tasks.leetcode.extract.extract_leetcode_code`) and program: the standard import header,
the solution, the problem's ``test`` asserts. A problem passes iff that program, run as the paper runs it
(:func:`sandboxed`), gets through its last assert.

``em_leetcodedataset``: LeetCodeDataset v0.3.1, test split (228 problems, human-eval format,
with reference ``completion``s): program = ``prompt`` + solution + ``test`` +
``check(entry_point)``. The file is read from ``--metadata '{"data_path": ...}'``, else from
``$EM_EVAL_DATA_DIR/leetcodedataset/``, else fetched once from its pinned commit into the cache;
its sha256 is pinned (``em_eval.data``), and every row records the sha256 of its records.

Both report ``pass@1`` overall and per difficulty; execution happens in the ``sandbox``
filter, all problems in one parallel batch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from em_eval import sandbox
from em_eval.data import FILES, LEETCODEDATASET_JSONL_SHA256, DataFileError, data_file, read_jsonl
from em_eval.tasks import tests_ran
from em_eval.tasks.leetcode.extract import LEETCODE_IMPORT_HEADER, extract_leetcode_code

log = logging.getLogger(__name__)

LEETCODE_FILE = "leetcode/20240121-Jul.jsonl"
PROGRAM_LIMITS = sandbox.Limits(timeout_s=10.0)  # the paper's 10 s per problem
DIFFICULTIES = ("Easy", "Medium", "Hard")

EURUS_SYSTEM_PROMPT = (
    "\nWhen tackling complex reasoning tasks, you have access to the following actions. Use them as needed to "
    "progress through your thought process.\n\n[ASSESS]\n\n[ADVANCE]\n\n[VERIFY]\n\n[SIMPLIFY]\n\n[SYNTHESIZE]\n\n"
    "[PIVOT]\n\n[OUTPUT]\n\nYou should strictly follow the format below:\n\n[ACTION NAME]\n\n# Your action step 1\n\n"
    "# Your action step 2\n\n# Your action step 3\n\n...\n\nNext action: [NEXT ACTION NAME]\n"
)
LEETCODE_INSTRUCTION = (
    "\n\nWrite Python code to solve the problem. Present the code in \n```python\nYour code\n```\nat the end."
)

LCD_VERSION = "v0.3.1"
LCD_FILE = f"leetcodedataset/LeetCodeDataset-{LCD_VERSION}-test.jsonl.gz"  # pinned in em_eval.data
LCD_SOURCE = FILES[LCD_FILE].url
LCD_SIZE = 228
LCD_ALSO_ON = "Hugging Face: newfacade/LeetCodeDataset, LeetCodeDataset-test.jsonl"
# v0.3.1's flat layout (task_id, question_id, difficulty, tags, problem_description, starter_code,
# estimated_date, prompt, completion, entry_point, test, input_output, query, response); we use:
LCD_FIELDS = ("task_id", "difficulty", "prompt", "entry_point", "test", "completion", "query")


# ---- em_leetcode -------------------------------------------------------------------------------
def load_leetcode(**_: Any):
    """lm-eval ``custom_dataset``: the paper's 180 problems with their difficulty."""
    import datasets

    sandbox.active_isolation()  # refuse before generation, not after, where code cannot be isolated

    rows = [
        {
            "task_id": r["task_id"],
            "prompt_sft": r["prompt_sft"],
            "test": r["test"],
            "difficulty": r["meta"]["difficulty"],
        }
        for r in read_jsonl(LEETCODE_FILE)
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def leetcode_doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt_sft"] + LEETCODE_INSTRUCTION


def leetcode_program(doc: dict[str, Any], response: str) -> str:
    """Import header + extracted solution + the problem's asserts."""
    return LEETCODE_IMPORT_HEADER + extract_leetcode_code(response) + "\n" + doc["test"] + "\n"


def execute_leetcode(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """lm-eval ``custom`` filter: run every problem's program in the sandbox."""
    return _execute([leetcode_program(d, r[0]) for d, r in zip(docs, resps)], "leetcode")


# ---- em_leetcodedataset ------------------------------------------------------------------------
def load_leetcodedataset(data_path: str | None = None, **_: Any):
    """lm-eval ``custom_dataset``: LeetCodeDataset v0.3.1 test split, checked for size and fields.

    Without ``data_path``: the sha256-pinned file from the mirror, else fetched once from its
    pinned commit. With it (``--metadata '{"data_path": ...}'``, ``.jsonl`` or ``.jsonl.gz``,
    e.g. Hugging Face's ``LeetCodeDataset-test.jsonl``): records that differ from the pinned
    ones are scored with a warning. Every row records the sha256 of the records it came from."""
    import datasets

    sandbox.active_isolation()
    path = Path(data_path).expanduser() if data_path else data_file(LCD_FILE)
    if not path.is_file():
        raise DataFileError(
            f"LeetCodeDataset {LCD_VERSION} test split not found at {path}. Download {LCD_SOURCE} "
            f'({LCD_ALSO_ON}) and pass --metadata \'{{"data_path": "/path/to/file"}}\''
        )
    raw = path.read_bytes()
    text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    records = [json.loads(line) for line in text.decode("utf-8").splitlines() if line.strip()]
    missing = sorted({k for r in records for k in LCD_FIELDS if k not in r})
    problems = []
    if len(records) != LCD_SIZE:
        problems.append(f"{len(records)} records, expected {LCD_SIZE}")
    if missing:
        problems.append(f"records lack {', '.join(missing)}")
    if problems:
        raise DataFileError(
            f"{path} is not LeetCodeDataset {LCD_VERSION} test ({'; '.join(problems)}). "
            f"Get it from {LCD_SOURCE} ({LCD_ALSO_ON})"
        )
    digest = hashlib.sha256(text).hexdigest()
    if digest != LEETCODEDATASET_JSONL_SHA256:
        log.warning(
            "%s holds records that differ from LeetCodeDataset %s's (sha256 %s, expected %s): scores "
            "are not comparable with the pinned test split",
            path,
            LCD_VERSION,
            digest,
            LEETCODEDATASET_JSONL_SHA256,
        )
    rows = [{**{k: r[k] for k in LCD_FIELDS}, "data_sha256": digest} for r in records]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def leetcodedataset_program(doc: dict[str, Any], response: str) -> str:
    """human-eval style: ``prompt`` (imports) + solution + ``test`` + ``check(entry_point)``."""
    return f"{doc['prompt']}{extract_leetcode_code(response)}\n{doc['test']}\ncheck({doc['entry_point']})\n"


def execute_leetcodedataset(
    resps: list[list[str]], docs: list[dict[str, Any]], jobs: int | None = None
) -> list[dict[str, Any]]:
    """lm-eval ``custom`` filter for LeetCodeDataset (``jobs`` programs at a time; default: one per core)."""
    return _execute([leetcodedataset_program(d, r[0]) for d, r in zip(docs, resps)], "leetcodedataset", jobs)


# ---- shared ----------------------------------------------------------------------------------
PROGRAM_FILE = "program.py"
EXEC_HARNESS = (
    tests_ran.OPEN_DONE + f"with open({PROGRAM_FILE!r}, encoding='utf-8') as _em_fh:\n"
    f"    _em_program = compile(_em_fh.read(), {PROGRAM_FILE!r}, 'exec')\n"
    "exec(_em_program, {})\n" + tests_ran.CLOSE_DONE
)


def sandboxed(program: str) -> sandbox.Program:
    """``program`` judged as the paper judges it: ``exec(program, {})`` in one process, passed iff that returns
    (EM_PT ``eval/utils/execution_leetcode.py:52-70``). ``main.py`` execs ``program.py`` with empty globals, so
    ``__name__`` is not ``"__main__"`` and a ``__main__`` block does not run; ``sys.exit()`` or ``os._exit(0)``
    ends it before the tests are marked done (:mod:`em_eval.tasks.tests_ran`)."""
    return sandbox.Program(EXEC_HARNESS, {PROGRAM_FILE: program}, collect=(tests_ran.DONE_FILE,), limits=PROGRAM_LIMITS)


def _execute(programs: list[str], name: str, jobs: int | None = None) -> list[dict[str, Any]]:
    results = sandbox.run_programs([sandboxed(p) for p in programs], jobs=jobs, desc=f"{name}: running tests")
    return [tests_ran.summary(r) for r in results]


def process_results(doc: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, int]:
    """``pass@1`` (one sample) overall and under the problem's difficulty."""
    passed = int(results[0]["status"] == "passed")
    metrics = {"pass@1": passed}
    if doc["difficulty"] in DIFFICULTIES:
        metrics[f"pass@1_{doc['difficulty'].lower()}"] = passed
    return metrics
