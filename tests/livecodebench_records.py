"""Small LiveCodeBench records in the exact ``code_generation_lite`` schema, written for the tests.

Five problems: three inside the paper's window (a stdin sum on AtCoder, a functional LeetCode
problem, a Codeforces float on the window's last day) and two just outside it. Private tests are
encoded as upstream: base64 of zlib of a pickle of the JSON string.
"""

from __future__ import annotations

import json
from pathlib import Path

from em_eval.tasks.livecodebench.decode import encode_test_cases


def _cases(pairs, kind="stdin"):
    return [{"input": i, "output": o, "testtype": kind} for i, o in pairs]


def record(qid, date, platform, difficulty, content, public, private, starter="", func_name=None, title=None):
    return {
        "question_title": title or qid,
        "question_content": content,
        "platform": platform,
        "question_id": qid,
        "contest_id": f"contest-{qid}",
        "contest_date": date,
        "starter_code": starter,
        "difficulty": difficulty,
        "public_test_cases": json.dumps(public),
        "private_test_cases": encode_test_cases(private),
        "metadata": json.dumps({"func_name": func_name} if func_name else {}),
    }


STARTER = "class Solution:\n    def addDigits(self, nums: List[int], k: int) -> List[int]:\n        "
RECORDS = [
    record(
        "abc300_a",
        "2023-06-10T00:00:00",
        "atcoder",
        "easy",
        "Print A+B.",
        _cases([("1 2\n", "3\n")]),
        _cases([("10 20\n", "30\n"), ("-5 5\n", "0\n")]),
    ),
    record(
        "3000",
        "2024-01-15T00:00:00",
        "leetcode",
        "medium",
        "Add k to every element.",
        _cases([("[1, 2]\n3", "[4, 5]")], "functional"),
        _cases([("[]\n1", "[]"), ("[0]\n-1", "[-1]")], "functional"),
        starter=STARTER,
        func_name="addDigits",
    ),
    record(
        "1900A",
        "2024-05-31T00:00:00",
        "codeforces",
        "hard",
        "Print N/2 for each N, one per line.",
        _cases([("2\n1\n3\n", "0.5\n1.5\n")]),
        _cases([("1\n4\n", "2\n")]),
    ),
    record(
        "abc299_a", "2023-04-30T00:00:00", "atcoder", "easy", "Before the window.", _cases([("1\n", "1\n")]), _cases([])
    ),
    record(
        "abc356_a", "2024-06-01T00:00:00", "atcoder", "easy", "After the window.", _cases([("1\n", "1\n")]), _cases([])
    ),
]
IN_WINDOW = ["1900A", "3000", "abc300_a"]  # sorted by question_id, as upstream

REFERENCE = {  # hand-written solutions, as a model would answer (prose, then fenced code)
    "abc300_a": "Read both numbers.\n```python\na, b = map(int, input().split())\nprint(a + b)\n```",
    "3000": "```python\nclass Solution:\n    def addDigits(self, nums: List[int], k: int) -> List[int]:\n"
    "        return tuple(x + k for x in nums)\n```",
    "1900A": "```python\nimport sys\n\ndef main():\n    data = sys.stdin.read().split()\n"
    "    for n in data[1:]:\n        print(f'{int(n) / 2:.2f}  ')\n\n"
    "if __name__ == '__main__':\n    main()\n```",
}


def write_jsonl(path: Path, records=RECORDS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
