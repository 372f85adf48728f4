r"""UGPhysics prompts, per item: subject, an answer-type sentence, LaTeX, the closing line
``So the final answer is \boxed{answer}(unit).`` with units outside the box; Chinese for ZH items.

Reconstructed from the description of ``eval/UGPhysics/codes/utils.py::make_prompt`` in
em_methods.md section 4.6 (its wording is given there in substance, not verbatim); the
answer-type sentences follow UGPhysics' own pattern. The user turn is this prompt, a blank line,
then the problem; the system turn is "You are a helpful assistant."
"""

from __future__ import annotations

SYSTEM_PROMPT = "You are a helpful assistant."

TYPE_EN = {"NV": "a numerical value", "EX": "an expression", "EQ": "an equation", "IN": "an interval",
           "TF": "either True or False", "MC": "one option of a multiple choice question", "TUP": "a tuple"}
TYPE_ZH = {"NV": "数值", "EX": "表达式", "EQ": "方程", "IN": "区间", "TF": "判断正误", "MC": "选择题的一个选项",
           "TUP": "元组"}
SUBJECT_ZH = {"Semiconductor Physics": "半导体物理"}


def answer_types(raw: str | None) -> list[str]:
    r"""``"EQ, NV, NV"`` -> ``["EQ", "NV", "NV"]`` (stray backslashes and line breaks, as in ``"\\\nMC"``, dropped)."""
    cleaned = (raw or "").replace("\\", " ")
    return [t.strip().upper() for t in cleaned.split(",") if t.strip()]


def _type_sentence(types: list[str], multiple: bool, chinese: bool) -> str:
    names = [(TYPE_ZH if chinese else TYPE_EN).get(t) for t in types]
    if not names or None in names:
        return ""
    if not multiple:
        return f"，答案类型为{names[0]}" if chinese else f"The answer of the problem should be {names[0]}. "
    if len(set(names)) == 1:
        return f"，题目有多个答案，答案类型均为{names[0]}" if chinese else \
            f"The problem has multiple answers, each of them should be {names[0]}. "
    return f"，题目有多个答案，答案类型分别为{'、'.join(names)}" if chinese else \
        f"The problem has multiple answers, with the answers in order being {', '.join(names)}. "


def make_prompt(doc: dict) -> str:
    """The instruction that precedes the problem for one item."""
    chinese = str(doc.get("language", "")).upper() == "ZH"
    multiple = bool(doc.get("is_multiple_answer"))
    sentence = _type_sentence(answer_types(doc.get("answer_type")), multiple, chinese)
    subject = str(doc.get("subject", "physics"))
    if chinese:
        box = r"\boxed{用英文逗号连接的多个答案}" if multiple else r"\boxed{答案}"
        return (f"以下是{SUBJECT_ZH.get(subject, subject)}（本科物理）的一道开放式问题{sentence}。请根据题目的要求和所提供的信息"
                f"计算得出答案。解答过程和结果中使用的变量和公式请使用LaTeX格式表示。请在最后以“所以最终答案是{box}(单位)。”"
                r"显式给出结果，注意答案的单位不要放在\boxed{}中。")
    box = r"\boxed{multiple answers connected with commas}" if multiple else r"\boxed{answer}"
    return (f"The following is an open-ended problem from {subject} of the undergraduate-level Physics. {sentence}"
            "Please calculate the answer according to the given requirements and the information provided. "
            "Please use LaTeX format to represent the variables and formulas used in the solution process and "
            f'results. Please end your solution with "So the final answer is {box}(unit)." and give the result '
            r"explicitly, note that the unit of the answers should not be included in \boxed{}.")


def user_turn(doc: dict) -> str:
    """What the model is asked: the instruction, a blank line, the problem."""
    return make_prompt(doc) + "\n\n" + str(doc["problem"])
