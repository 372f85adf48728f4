r"""UGPhysics prompts, per item, as the paper's ``make_prompt`` words them (EM_PT cafe72e,
``eval/UGPhysics/codes/utils.py:181``), character for character: the subject, a sentence naming the
answer type(s), LaTeX, and the closing line ``So the final answer is \boxed{answer}(unit).`` with
units outside the box; Chinese for ZH items. The user turn is this instruction, a blank line, then the
problem (``generate_open.py:249``); the system turn is "You are a helpful assistant." (its ``--system``
default, the task YAMLs' ``description``). ``tests/data/ugphysics_prompt_oracle.json`` records the
paper's prompt for all 372 items.

The paper's wording is kept as it is, typos and capitals included ("The answer of The problem",
"a range inteval", "seperated"). An answer type is named by the first of ``TYPE_ORDER`` found in its
text, as the paper looks it up, so ``"\\\nMC"`` reads as MC.
"""

from __future__ import annotations

from em_eval.data import DataFileError

SYSTEM_PROMPT = "You are a helpful assistant."

TYPE_ORDER = ("IN", "TF", "EX", "EQ", "MC", "NV", "TUP")
TYPE_NAMES = {
    "en": {
        "IN": "a range inteval",
        "TF": "either True or False",
        "EX": "an expression",
        "EQ": "an equation",
        "MC": "one option of a multiple choice question",
        "NV": "a numerical value without units",
        "TUP": "multiple numbers, seperated by comma, such as (x, y, z)",
    },
    "zh": {
        "IN": "区间",
        "TF": "是或否",
        "EX": "表达式",
        "EQ": "方程",
        "MC": "多项选择题的一个选项",
        "NV": "数值",
        "TUP": "由逗号隔开的若干元素的元组，比如 (x, y, z)",
    },
}


def answer_types(raw: str | None) -> list[str]:
    r"""``"EQ, NV, NV"`` -> ``["EQ", "NV", "NV"]`` (stray backslashes and line breaks, as in ``"\\\nMC"``, dropped)."""
    cleaned = (raw or "").replace("\\", " ")
    return [t.strip().upper() for t in cleaned.split(",") if t.strip()]


def type_name(raw: str, lang: str) -> str:
    """The words for one answer type: the first code of ``TYPE_ORDER`` that ``raw`` contains."""
    code = next((t for t in TYPE_ORDER if t in raw), None)
    if code is None:
        raise DataFileError(
            f"UGPhysics answer_type {raw!r} names none of {', '.join(TYPE_ORDER)}; "
            "fix the item's answer_type in the data file"
        )
    return TYPE_NAMES[lang][code]


def type_sentence(raw: str, multiple: bool, lang: str) -> str:
    """The answer-type clause: one type, one type for several answers, or the types in order."""
    zh = lang == "zh"
    if not multiple:
        name = type_name(raw, lang)
        return f"，答案类型为{name}" if zh else f"The answer of The problem should be {name}. "
    names = [type_name(part, lang) for part in raw.split(",")]
    if len(set(names)) == 1:
        return (
            f"，题目有多个答案，答案类型均为{names[0]}"
            if zh
            else f"The problem has multiple answers, each of them should be {names[0]}. "
        )
    return (
        f"，题目有多个答案，答案类型分别为{'、'.join(names)}"
        if zh
        else f"The problem has multiple answers, with the answers in order being {', '.join(names)}. "
    )


def make_prompt(doc: dict) -> str:
    """The instruction that precedes the problem for one item."""
    lang = "zh" if str(doc.get("language", "")).upper() == "ZH" else "en"
    multiple = bool(doc.get("is_multiple_answer"))
    types = type_sentence(str(doc["answer_type"]), multiple, lang)
    subject = doc["subject"]
    if lang == "zh":
        box = r"\boxed{用英文逗号连接的多个答案}" if multiple else r"\boxed{答案}"
        return (
            f"以下是大学物理的{subject}科目中的解答题{types}。请根据题目的要求和所提供的信息计算得出答案。"
            f"解答过程和结果中使用的变量和公式请使用LaTeX格式表示。请在最后以“所以最终答案是{box}(单位)。”显式给出结果"
            r"。注意答案的单位不要放在\boxed{}中。"
        )
    box = r"\boxed{multiple answers connected with commas}" if multiple else r"\boxed{answer}"
    return (
        f"The following is an open-ended problem from {subject} of the undergraduate-level Physics. {types}"
        "Please calculate the answer according to the given requirements and the information provided. "
        "Please use LaTeX format to represent the variables and formulas used in the solution process and "
        f'results. Please end your solution with "So the final answer is {box}(unit)." and give the result '
        r"explicitly, note that the unit of the answers should not be included in \boxed{}."
    )


def user_turn(doc: dict) -> str:
    """What the model is asked: the instruction, a blank line, the problem."""
    return make_prompt(doc) + "\n\n" + str(doc["problem"])
