"""Training prompts: a JSONL file with a ``prompt`` or ``problem`` field, rendered through the
chat template, tokenized once, and served in a seeded order that depends only on the step.
Training needs no labels; when every row also has an ``answer``, rewards that guess labels
(majority voting) log how often they guessed right."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from em_eval.local_files import file_sha256, jsonl_rows
from em_eval.user_errors import UserError

PROMPT_FIELDS = ("prompt", "problem")
LABEL_FIELD = "answer"


class PromptDataError(UserError, ValueError):
    """A prompt file that cannot be used for training."""


@dataclass(frozen=True)
class PromptSet:
    """Tokenized prompts plus what identifies them."""

    token_ids: list[list[int]]
    path: Path
    sha256: str
    dropped: int  # rows over max_prompt_tokens left out (overlong_prompts=drop)
    labels: list[str] | None = None  # each kept prompt's `answer`, when every row has one (never trained on)


def read_prompts(path: Path, field: str | None = None) -> list[str]:
    """Prompt texts of a JSONL file (blank lines skipped); one clear error for any bad row."""
    if not path.is_file():
        raise PromptDataError(f"prompt file {path} does not exist; set prompts=<file.jsonl>")
    texts = [
        _prompt_text(row, field, f"{path}:{lineno}")
        for lineno, row in jsonl_rows(path, PromptDataError, "write one object per line")
    ]
    if not texts:
        raise PromptDataError(f"prompt file {path} has no prompts; add JSON lines with a 'prompt' or 'problem' field")
    return texts


def read_labels(path: Path) -> list[str] | None:
    """Each row's ``answer`` as text, or None unless every row has a non-empty one."""
    labels = []
    for _, row in jsonl_rows(path, PromptDataError, "write one object per line"):
        value = row.get(LABEL_FIELD) if isinstance(row, dict) else None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            return None
        labels.append(str(value))
    return labels


def _prompt_text(row: Any, field: str | None, where: str) -> str:
    fields = (field,) if field else PROMPT_FIELDS
    if isinstance(row, dict):
        for name in fields:
            if isinstance(row.get(name), str) and row[name].strip():
                return row[name]
    wanted = f"'{field}'" if field else "'prompt' or 'problem'"
    raise PromptDataError(f"{where} has no non-empty {wanted} text field; fix the row or set prompt_field=<name>")


def render_prompt(
    tokenizer: Any, text: str, *, system_prompt: str | None, user_template: str, chat_template: bool
) -> str:
    """The string the model sees: the user template filled in, through the chat template if asked."""
    user = user_template.replace("{prompt}", text)
    if not chat_template:
        return user
    if not getattr(tokenizer, "chat_template", None):
        raise PromptDataError("the tokenizer has no chat template; set chat_template=false to train on raw prompts")
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def load_prompt_set(
    path: str | Path,
    tokenizer: Any,
    *,
    field: str | None = None,
    system_prompt: str | None = None,
    user_template: str = "{prompt}",
    chat_template: bool = True,
    max_prompt_tokens: int = 1024,
    overlong: str = "error",
) -> PromptSet:
    """Read, render and tokenize every prompt; overlong prompts raise or are dropped."""
    path = Path(path)
    texts = read_prompts(path, field)
    labels = read_labels(path)
    ids, kept = [], []
    too_long = []
    for lineno, text in enumerate(texts, 1):
        rendered = render_prompt(
            tokenizer, text, system_prompt=system_prompt, user_template=user_template, chat_template=chat_template
        )
        tokens = tokenizer(rendered, add_special_tokens=not chat_template)["input_ids"]
        if len(tokens) > max_prompt_tokens:
            too_long.append((lineno, len(tokens)))
        else:
            ids.append(tokens)
            kept.append(lineno - 1)
    if too_long and overlong == "error":
        first, n = too_long[0]
        raise PromptDataError(
            f"{len(too_long)} of {len(texts)} prompts in {path} are longer than max_prompt_tokens={max_prompt_tokens} "
            f"(prompt #{first} has {n} tokens); raise max_prompt_tokens or set overlong_prompts=drop"
        )
    if not ids:
        raise PromptDataError(f"every prompt in {path} is longer than max_prompt_tokens={max_prompt_tokens}; raise it")
    return PromptSet(
        token_ids=ids,
        path=path,
        sha256=file_sha256(path),
        dropped=len(too_long),
        labels=[labels[i] for i in kept] if labels else None,
    )


@lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"em-eval-prompts-{seed}-{epoch}").shuffle(order)
    return tuple(order)


def step_prompt_indices(n_prompts: int, step: int, prompts_per_step: int, seed: int) -> list[int]:
    """Global prompt indices of a step: a fresh seeded shuffle every epoch, a pure function of
    the step, so resuming needs no sampler state."""
    out = []
    for position in range(step * prompts_per_step, (step + 1) * prompts_per_step):
        epoch, offset = divmod(position, n_prompts)
        out.append(_epoch_order(n_prompts, seed, epoch)[offset])
    return out
