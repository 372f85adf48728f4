"""The multi-step driver: rounds batched across problems, lm-eval's rendering reused, telemetry kept."""

from __future__ import annotations

import json

import pytest
from lm_eval.api.instance import Instance

from em_eval.decoding import multistep
from em_eval.records import MULTISTEP_KEY, Generated, write_samples
from em_eval.tasks.scicode.prompts import ScicodeSession, problems
from em_eval.tasks.scicode.task import doc_to_text, load_dataset

PREFIX = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def dev_docs() -> dict[str, dict]:
    return {d["problem_id"]: dict(d) for d in load_dataset(split="dev")["test"]}


def _request(doc: dict, idx: int = 0, **extra) -> Instance:
    kwargs = {"em_multistep": "scicode", "until": [], "max_gen_toks": 8, **extra}
    return Instance(
        "generate_until", doc, (PREFIX + doc_to_text(doc) + SUFFIX, kwargs), idx, metadata=("em_scicode_dev", idx, 1)
    )


class FakeModel:
    """Records every ``plain`` call; answers each prompt with code naming its round."""

    def __init__(self) -> None:
        self.calls: list[list[Instance]] = []

    def __call__(self, requests: list[Instance]) -> list[Generated]:
        self.calls.append(requests)
        answers = []
        for req in requests:
            if MULTISTEP_KEY in req.args[1]:
                pytest.fail("a step request still carries the multi-step marker")
            answers.append(
                Generated(
                    f"```python\ndef round_{len(self.calls)}():\n    return {len(self.calls)}\n```",
                    ({"gen_tokens": 3},),
                )
            )
        return answers


def generate(requests: list[Instance], *args, **kwargs) -> list[str]:
    """The driver's responses, with their records written into the requests as the backends write them."""
    return write_samples(requests, multistep.generate_until_with_steps(requests, *args, **kwargs))


def test_rounds_are_batched_across_problems_and_rendered_like_the_first(dev_docs):
    docs = [dev_docs["19"], dev_docs["29"], dev_docs["1"]]  # 2, 3 and 1 steps
    requests = [_request(d, i) for i, d in enumerate(docs)]
    model = FakeModel()
    outputs = generate(requests, model)
    assert [len(call) for call in model.calls] == [3, 2, 1]  # one plain call per step round
    for call in model.calls:
        for req in call:
            assert req.args[0].startswith(PREFIX) and req.args[0].endswith(SUFFIX)
    round3 = model.calls[2][0].args[0]
    assert "def round_1():" in round3 and "def round_2():" in round3  # the model's own earlier code
    records = [multistep.parse_record(o) for o in outputs]
    assert [len(r["steps"]) for r in records] == [2, 3, 1]
    assert records[1]["steps"][2]["output"].startswith("```python\ndef round_3")
    assert records[0]["em_multistep"] == "scicode" and records[0]["protocol"] == "scicode-multistep"
    telemetry = requests[1].args[1]["em_telemetry"]
    assert [t["step_round"] for t in telemetry] == [1, 2, 3] and all(t["gen_tokens"] == 3 for t in telemetry)


def test_plain_requests_pass_through_in_order(dev_docs):
    plain = Instance("generate_until", {}, ("What is 2+2?", {"until": []}), 0, metadata=("em_smoke", 0, 1))
    requests = [plain, _request(dev_docs["1"], 1), plain]
    model = FakeModel()
    outputs = generate(requests, model)
    assert [len(c) for c in model.calls] == [2, 1]
    assert outputs[0] == outputs[2] == "```python\ndef round_1():\n    return 1\n```"
    assert multistep.parse_record(outputs[1])["steps"][0]["step"] == "1.1"
    assert generate([plain], FakeModel()) == ["```python\ndef round_1():\n    return 1\n```"]


def test_a_context_without_the_first_prompt_is_refused(dev_docs):
    request = _request(dev_docs["1"])
    request.arguments = ("something else entirely", request.args[1])
    with pytest.raises(multistep.MultiStepError, match="first step's prompt does not occur"):
        generate([request], FakeModel())


def test_unknown_protocol_is_refused(dev_docs):
    with pytest.raises(multistep.MultiStepError, match="unknown em_multistep protocol 'chess'"):
        generate([_request(dev_docs["1"], em_multistep="chess")], FakeModel())


def test_plain_text_from_a_backend_that_ignored_the_marker_is_refused():
    with pytest.raises(multistep.MultiStepError, match="ignored the 'em_multistep' generation kwarg.*--model em_inf"):
        multistep.parse_record("def f(): return 1")
    with pytest.raises(multistep.MultiStepError):
        multistep.parse_record(json.dumps({"steps": []}))


def test_sessions_are_registered_by_name():
    assert multistep.session_factory("scicode") is ScicodeSession
    assert len(problems("dev")) == 15


def test_one_progress_bar_counts_steps_and_problems_while_step_rounds_run_quietly(dev_docs, capsys):
    docs = [dev_docs["19"], dev_docs["29"], dev_docs["1"]]  # 2, 3 and 1 generated steps
    loud, quiet = FakeModel(), FakeModel()
    generate([_request(d, i) for i, d in enumerate(docs)], loud, quiet)
    assert loud.calls == [] and [len(c) for c in quiet.calls] == [3, 2, 1], "step rounds never show their own bar"
    err = capsys.readouterr().err
    assert "em_multistep: steps generated" in err and "6/6" in err and "problems done 3/3" in err
    assert err.count("problems done 0/3") >= 1
    generate([_request(dev_docs["1"])], FakeModel(), progress=False)
    assert "steps generated" not in capsys.readouterr().err
