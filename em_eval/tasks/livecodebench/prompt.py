"""LiveCodeBench's code-generation prompt as the paper's fork builds it (em_methods.md P9).

System turn: the Eurus "action" prompt read from ``eval/system_prompt_original.md``, whose
newlines are the two characters ``\\n`` (the file has no real line breaks); set as the task
``description``, so lm-eval sends it as the system turn under ``--apply_chat_template``.
User turn: LiveCodeBench's generic question template (``### Question``, ``### Format`` with the
starter code or the stdin/stdout instruction, ``### Answer``) followed by the paper's
"Write Python code ..." line.
"""

from __future__ import annotations

from typing import Any

from em_eval.tasks.leetcode.task import EURUS_SYSTEM_PROMPT, LEETCODE_INSTRUCTION

SYSTEM_PROMPT = EURUS_SYSTEM_PROMPT.replace("\n", "\\n")  # literal backslash-n, as the fork's file
WITH_STARTER_CODE = ("You will use the following starter code to write the solution to the problem and enclose "
                     "your code within delimiters.")
WITHOUT_STARTER_CODE = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not "
                        "directly test on the sample inputs). Enclose your code within delimiters as follows.")


def question_turn(question_content: str, starter_code: str) -> str:
    """LiveCodeBench's generic question template."""
    text = f"### Question:\n{question_content}\n\n"
    if starter_code:
        text += f"### Format: {WITH_STARTER_CODE}\n```python\n{starter_code}\n```\n\n"
    else:
        text += f"### Format: {WITHOUT_STARTER_CODE}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def doc_to_text(doc: dict[str, Any]) -> str:
    """lm-eval ``doc_to_text``: the user turn."""
    return question_turn(doc["question_content"], doc["starter_code"]) + LEETCODE_INSTRUCTION
