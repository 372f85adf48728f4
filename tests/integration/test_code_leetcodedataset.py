"""em_leetcodedataset: human-eval style programs; reference solutions must pass (>= 99%)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from em_eval.data import LEETCODEDATASET_JSONL_SHA256, DataFileError
from em_eval.tasks.leetcode import task as code_tasks

# One problem in LeetCodeDataset v0.3.1's flat layout, written for this test (not from the dataset).
RECORD = {
    "task_id": "two-sum",
    "question_id": 1,
    "difficulty": "Easy",
    "tags": ["Array", "Hash Table"],
    "prompt": "from typing import *\n\n",
    "entry_point": "Solution().twoSum",
    "test": "def check(candidate):\n    assert candidate(nums=[2, 7, 11, 15], target=9) == [0, 1]\n"
    "    assert candidate(nums=[3, 2, 4], target=6) == [1, 2]\n",
    "completion": "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
    "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
    "                return [seen[target - x], i]\n            seen[x] = i\n",
    "query": "Given nums and target, return indices of the two numbers that add up to target.",
    "response": "...",
}


def _write(path: Path, records: list[dict]) -> Path:
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    return path


def test_reference_completion_passes_and_a_wrong_one_fails(tmp_path):
    path = _write(tmp_path / "lcd.jsonl.gz", [RECORD] * code_tasks.LCD_SIZE)
    docs = [dict(d) for d in code_tasks.load_leetcodedataset(data_path=str(path))["test"]][:2]
    assert docs[0]["difficulty"] == "Easy" and len(docs[0]["data_sha256"]) == 64
    wrong = "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [0, 0]\n```"
    outcomes = code_tasks.execute_leetcodedataset([[docs[0]["completion"]], [wrong]], docs)
    assert [o["status"] for o in outcomes] == ["passed", "failed"], outcomes
    assert code_tasks.process_results(docs[0], outcomes[:1]) == {"pass@1": 1, "pass@1_easy": 1}


def test_wrong_file_and_missing_file_are_clear_errors(tmp_path, monkeypatch):
    short = _write(tmp_path / "short.jsonl.gz", [RECORD] * 3)
    with pytest.raises(DataFileError, match="3 records, expected 228"):
        code_tasks.load_leetcodedataset(data_path=str(short))
    nested = _write(
        tmp_path / "nested.jsonl.gz",  # the older layout, difficulty under meta
        [{**{k: v for k, v in RECORD.items() if k != "difficulty"}, "meta": {"difficulty": "Easy"}}] * 228,
    )
    with pytest.raises(DataFileError, match=r"v0.3.1 test \(records lack difficulty\)"):
        code_tasks.load_leetcodedataset(data_path=str(nested))
    with pytest.raises(DataFileError, match="not found at .*nope.jsonl.*data_path"):
        code_tasks.load_leetcodedataset(data_path=str(tmp_path / "nope.jsonl"))
    monkeypatch.setenv("EM_EVAL_DATA_DIR", str(tmp_path))
    with pytest.raises(
        DataFileError, match="LeetCodeDataset-v0.3.1-test.jsonl.gz is missing .*expected sha256 3ae536cb"
    ):
        code_tasks.load_leetcodedataset()
    corrupt = tmp_path / "leetcodedataset" / "LeetCodeDataset-v0.3.1-test.jsonl.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(short.read_bytes())
    with pytest.raises(DataFileError, match="corrupt or a different version"):
        code_tasks.load_leetcodedataset()


def test_a_file_given_by_path_with_other_records_is_scored_with_a_warning(tmp_path, caplog, data_dir):
    with caplog.at_level("WARNING"):
        mine = _write(tmp_path / "mine.jsonl.gz", [RECORD] * 228)
        docs = code_tasks.load_leetcodedataset(data_path=str(mine))["test"]
    assert len(docs) == 228 and "scores are not comparable" in caplog.text
    caplog.clear()
    real = gzip.decompress((data_dir / code_tasks.LCD_FILE).read_bytes())
    (tmp_path / "LeetCodeDataset-test.jsonl").write_bytes(real)  # Hugging Face's name, uncompressed
    with caplog.at_level("WARNING"):
        docs = code_tasks.load_leetcodedataset(data_path=str(tmp_path / "LeetCodeDataset-test.jsonl"))["test"]
    assert docs[0]["data_sha256"] == LEETCODEDATASET_JSONL_SHA256 and "not comparable" not in caplog.text


def test_without_mirror_or_path_it_is_fetched_once_from_the_pinned_commit(tmp_path, monkeypatch, data_dir):
    import io
    import urllib.error
    import urllib.request

    monkeypatch.delenv("EM_EVAL_DATA_DIR", raising=False)
    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path / "cache"))
    payload = (data_dir / code_tasks.LCD_FILE).read_bytes()
    urls = []

    class Response(io.BytesIO):
        headers: dict = {}

    class Opener:  # what urllib.request.build_opener gives em_eval.data.fetch
        def __init__(self, open_url):
            self.open = open_url

    def fake_open(url, timeout):
        urls.append(url)
        return Response(payload)

    monkeypatch.setattr(urllib.request, "build_opener", lambda *handlers: Opener(fake_open))
    for _ in range(2):
        docs = code_tasks.load_leetcodedataset()["test"]
    assert urls == [code_tasks.LCD_SOURCE] and "/9477c14d76dcbdef67d70f0e258ad2c2d4178fec/" in urls[0]
    assert len(docs) == 228 and docs[0]["data_sha256"] == LEETCODEDATASET_JSONL_SHA256
    assert (tmp_path / "cache" / "data" / code_tasks.LCD_FILE).read_bytes() == payload

    def offline(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "build_opener", lambda *handlers: Opener(offline))
    monkeypatch.setenv("EM_EVAL_CACHE", str(tmp_path / "empty"))
    with pytest.raises(
        DataFileError, match="could not download .*LeetCodeDataset-v0.3.1-test.jsonl.gz.*EM_EVAL_DATA_DIR"
    ):
        code_tasks.load_leetcodedataset()
    assert not list((tmp_path / "empty").rglob("*.gz"))


def test_reference_solutions_pass_at_least_99_percent(data_dir):
    """The paper's 10 s limit per problem; a program that timed out is run once more on its own, so a
    loaded machine cannot fail a correct solution (a wrong one still fails, a slow one still times out)."""
    docs = [dict(d) for d in code_tasks.load_leetcodedataset()["test"]]
    outcomes = code_tasks.execute_leetcodedataset([[d["completion"]] for d in docs], docs)
    timed_out = [i for i, o in enumerate(outcomes) if o["status"] == "timeout"]
    if timed_out:
        again = code_tasks.execute_leetcodedataset(
            [[docs[i]["completion"]] for i in timed_out], [docs[i] for i in timed_out], jobs=1
        )
        for i, outcome in zip(timed_out, again):
            outcomes[i] = outcome
    passed = sum(o["status"] == "passed" for o in outcomes)
    assert passed / len(docs) >= 0.99, [(d["task_id"], o) for d, o in zip(docs, outcomes) if o["status"] != "passed"]
