"""Analyses over lm-eval output: pass@k curves, calibration, voting, semantic entropy (pure
functions against brute force or hand-computed cases; the report and CLI on a synthetic run)."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from em_eval.analysis.calibration import auroc, expected_calibration_error, reliability
from em_eval.analysis.confidence import SIGNALS, signal_names
from em_eval.analysis.passk import curve_ks, pass_at_k_curve
from em_eval.analysis.samples import ProblemSamples, load_sample_runs
from em_eval.analysis.semantic import semantic_entropy
from em_eval.analysis.voting import budget_majority, filtered_correct, most_confident, weighted_correct
from em_eval.cli import main
from em_eval.metrics import mean_stderr
from em_eval.records import response_records
from em_eval.results import ResultsError, load_run
from synthetic_runs import write_run


def test_pass_at_k_curve_equals_brute_force_enumeration() -> None:
    outcomes = [[1, 0, 0, 1, 0, 0], [0] * 6, [0, 0, 0, 0, 0, 1], [1, 1, 0, 1, 1, 1]]
    curve = pass_at_k_curve(outcomes)
    assert [pt.k for pt in curve] == list(range(1, 7))
    for pt in curve:
        brute = [
            sum(any(o[i] for i in subset) for subset in itertools.combinations(range(6), pt.k)) / math.comb(6, pt.k)
            for o in outcomes
        ]
        assert pt.estimate.mean == pytest.approx(sum(brute) / len(brute), abs=1e-12)
        assert pt.estimate.stderr == pytest.approx(mean_stderr(brute).stderr, abs=1e-12)
    assert curve[-1].estimate.mean == 0.75  # coverage: 3 of 4 problems solved at least once


def test_curve_ks_and_bad_k() -> None:
    assert curve_ks(40) == [*range(1, 17), 32, 40] and curve_ks(3) == [1, 2, 3] and curve_ks(64)[-2:] == [32, 64]
    with pytest.raises(ValueError, match="pass@5 needs at least 5 samples per problem; the fewest here is 4"):
        pass_at_k_curve([[1, 0, 0, 0]], ks=[5])


def test_auroc_and_ece_on_hand_computed_cases() -> None:
    # correct {0.9, 0.7, 0.6} vs incorrect {0.8, 0.6}: wins 1 + 1 + 1, one tie (half), of 6 pairs
    assert auroc([0.9, 0.8, 0.7, 0.6, 0.6], [1, 0, 1, 0, 1]) == pytest.approx(3.5 / 6)
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))
    probs, correct = [0.05, 0.15, 0.15, 0.95, 1.0], [0, 1, 0, 1, 1]
    # bins: {0.05} acc 0; {0.15, 0.15} acc 0.5; {0.95, 1.0} acc 1 -> 1/5*0.05 + 2/5*0.35 + 2/5*0.025
    assert expected_calibration_error(probs, correct) == pytest.approx(0.16)
    table = reliability(probs, correct)
    assert [b.count for b in table] == [1, 1 + 1, 0, 0, 0, 0, 0, 0, 0, 2] and table[9].confidence == 0.975
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        reliability([1.5], [1])


def test_voting_rules_on_hand_cases() -> None:
    clusters, correct = ["a", "b", "b", None, "a"], [1, 0, 0, 0, 1]
    assert weighted_correct(clusters, correct, [0.9, 0.2, 0.3, 5.0, 0.1]) == 1.0  # a: 1.0 beats b: 0.5
    assert weighted_correct(clusters, correct, [0.1, 0.2, 0.3, 5.0, 0.1]) == 0.0  # b: 0.5 beats a: 0.2
    assert weighted_correct(clusters, correct, [0.2, 0.1, 0.1, 0.0, 0.0]) == 0.5  # a tie: half the winners correct
    assert most_confident([0.2, 0.9, 0.5, 0.9], 0.5) == [1, 3] and most_confident([3.0, 1.0], 0.1) == [0]
    score, kept = filtered_correct(clusters, correct, [0.1, 0.8, 0.7, 0.0, 0.2], [1] * 5, 0.4)
    assert kept == [1, 2] and score == 0.0
    assert budget_majority(["a", "b", "b"], [1, 0, 0], [10, 10, 10], 15) == 1.0  # one sample fits
    assert budget_majority(["a", "b", "b"], [1, 0, 0], [10, 10, 10], 30) == 0.0


def test_semantic_entropy_counts_missing_answers_as_singletons() -> None:
    assert semantic_entropy([0, 0, 1, None]) == pytest.approx(1.5 * math.log(2))
    assert semantic_entropy([3, 3, 3]) == 0.0 and semantic_entropy([None, None]) == pytest.approx(math.log(2))


def test_signals_read_the_telemetry_records() -> None:
    record = {
        "entropy_before": 0.5,
        "entropy_before_thirds": [0.9, 0.6, 0.2],
        "self_certainty_after": 3.0,
        "top1_before": 0.8,
        "conf_before": {"mean": 5.0, "tail": 6.0, "bottom10": 2.0, "lowest": None},
    }
    p = ProblemSamples(0, (True, False, True), ("x", "y", "x"), (5, 5, 5), (record, {}, {}))
    assert SIGNALS["neg_entropy"].value(p, 0) == -0.5 and SIGNALS["rent"].value(p, 0) == -0.2
    assert SIGNALS["rent"].weight(-0.2) == pytest.approx(math.exp(-0.2))
    assert SIGNALS["conf_tail"].value(p, 0) == 6.0 and SIGNALS["conf_lowest"].value(p, 0) is None
    assert SIGNALS["self_certainty_after"].value(p, 0) == 3.0 and SIGNALS["self_certainty"].value(p, 1) is None
    assert SIGNALS["agreement"].value(p, 2) == pytest.approx(2 / 3)
    assert SIGNALS["top1"].value(p, 0) == SIGNALS["top1"].weight(0.8) == 0.8  # a probability: ECE applies
    assert SIGNALS["top1_after"].value(p, 0) is None
    with pytest.raises(ValueError, match="unknown signal.*known: agreement"):
        signal_names(["confidence"])


def _with_signals(results_file, conf: dict[tuple[int, int], float]) -> None:
    """Give each response of the run's samples file a DeepConf tail confidence and an entropy."""
    for samples in results_file.parent.glob("samples_*.jsonl"):
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        for row in rows:
            for i, record in enumerate(row["arguments"]["gen_args_0"]["arg_1"]["em_telemetry"]):
                c = conf[(row["doc_id"], i)]
                record.update(conf_before={"tail": c}, entropy_before=1 / c)
        samples.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_reports_and_cli_on_a_synthetic_run(tmp_path) -> None:
    outcomes = [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]]
    conf = {(d, i): 1.0 + 2 * o for d, row in enumerate(outcomes) for i, o in enumerate(row)}
    _with_signals(write_run(tmp_path / "cand", {"em_t": outcomes}, model="ckpt"), conf)
    write_run(tmp_path / "base", {"em_t": [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]}, model="base")
    out = tmp_path / "lab"
    specs = [f"trained={tmp_path / 'cand'}", f"base={tmp_path / 'base'}"]
    for command in ("passk", "calibration", "voting", "semantic-entropy"):
        extra = ["--signals", "conf_tail", "neg_entropy", "agreement"] if command in ("calibration", "voting") else []
        assert main([command, *specs, "-o", str(out), *extra]) == 0
    passk = json.loads((out / "passk.json").read_text())
    assert [(r["run"], r["pass_at_k"]) for r in passk if r["k"] == 4] == [
        ("trained", pytest.approx(2 / 3)),
        ("base", pytest.approx(2 / 3)),
    ]
    assert (out / "plots" / "passk_em_t.png").stat().st_size > 0
    calibration = {(r["run"], r["signal"]): r for r in json.loads((out / "calibration.json").read_text())}
    assert "bins" not in (out / "calibration.csv").read_text().splitlines()[0]  # nested: in the JSON only
    assert calibration[("trained", "conf_tail")]["auroc"] == 1.0  # the signal separates correct answers exactly
    assert calibration[("trained", "conf_tail")]["ece"] is None  # not a probability
    assert calibration[("trained", "neg_entropy")]["ece"] is not None and ("base", "conf_tail") not in calibration
    voting = {(r["run"], r["signal"]): r for r in json.loads((out / "voting.json").read_text())}
    assert voting[("trained", "conf_tail")]["top50_filtered"] == pytest.approx(2 / 3)  # the confident half: correct
    assert voting[("trained", "conf_tail")]["top50_token_share"] == 0.5
    entropy = {r["run"]: r for r in json.loads((out / "semantic_entropy.json").read_text())}
    assert entropy["base"]["semantic_entropy"] > 0 and (out / "semantic_entropy_problems.csv").exists()
    assert main(["voting", specs[0], "-o", str(out), "--signals", "nope"]) == 2
    assert main(["leaderboard", *specs, "-o", str(out)]) == 0  # the page shows the plots written beside it
    page = (out / "index.html").read_text()
    assert 'id="analysis-passk_em_t"' in page and 'id="analysis-reliability_em_t"' in page


def test_a_run_without_per_response_correctness_is_one_clear_error(tmp_path) -> None:
    results = write_run(tmp_path / "run", {"em_t": [[1, 0], [0, 1]]}, math_flags=False)
    with pytest.raises(ResultsError, match="exact_match=0.5 with no per-response grading records"):
        load_sample_runs([str(results)])


def test_rows_of_earlier_em_eval_versions_read_as_before(tmp_path) -> None:
    """Before issue 25 the records were metrics: top-level ``grading`` (math, smoke; with ``n``) and ``judged``
    (UGPhysics), the filtered responses plain text. The leaderboard's, the gate's and the analyses' readers
    find the same records there."""
    results = write_run(tmp_path / "run", {"em_t": [[1, 0, 0], [0, 1, 1]]})
    samples = next(results.parent.glob("samples_em_t_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    new = (load_run(results).tasks["em_t"], load_sample_runs([str(results)]))
    assert [p.answer for p in new[0].problems] == ["0", "-1"] and [len(response_records(r)) for r in rows] == [3, 3]
    for row in rows:
        records = response_records(row)
        row.update(grading=records, n=len(records), filtered_resps=row["resps"], metrics=[*row["metrics"], "grading"])
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (load_run(results).tasks["em_t"], load_sample_runs([str(results)])) == new
    judged = {"correct": True, "parts": [True], "predicted": ["2.5"], "paper": False, "disagree": True}
    assert response_records({"judged": judged, "filtered_resps": ["The answer is \\boxed{2.5}"]}) == [judged]
    assert response_records({"filtered_resps": [["The answer is 12"]]}) == [], "no records: plain text"
    step_record = json.dumps({"em_multistep": "scicode", "steps": [{"output": "x = 1"}]})
    multistep_row = {"resps": [[step_record]], "filtered_resps": [step_record]}  # a model's JSON, no grading filter
    assert response_records(multistep_row) == [], "a multi-step response is the model's record, not a grading one"


def test_the_n256_example_task_resolves_to_256_repeats_with_every_pass_and_maj_metric() -> None:
    from pathlib import Path

    from lm_eval.tasks._yaml_loader import load_yaml

    from em_eval.metrics import k_values

    example = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "em_aime24_n256.yaml"
    config = load_yaml(example, resolve_func=False)  # lm-eval's loader, include chain and all
    assert (config["task"], config["repeats"], config["dataset_kwargs"]["benchmark"]) == (
        "em_aime24_n256",
        256,
        "aime24",
    )
    names = {m["metric"] for m in config["metric_list"]}
    assert {f"{kind}@{k}" for kind in ("pass", "maj") for k in k_values(256)} | {"exact_match"} <= names
    assert not {"n", "grading"} & names, "the records are the filter's output, no metric"
    assert config["filter_list"][0]["filter"][-1]["filter_fn"].endswith("em_eval.tasks.math.task.grade_responses")
