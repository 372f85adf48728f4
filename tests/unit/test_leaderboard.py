"""``em-eval leaderboard``: method labels, intervals, paper reference data and the files it writes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from em_eval.cli import main
from em_eval.leaderboard import matching, paper
from em_eval.leaderboard.table import build_rows, interval, markdown
from em_eval.results import describe_method, load_runs
from synthetic_runs import write_run

REPO = Path(__file__).resolve().parents[2]


# ---- paper reference data -------------------------------------------------------------------
def test_paper_reference_is_marked_reported_and_internally_consistent() -> None:
    data = yaml.safe_load((REPO / "leaderboards" / "paper_reference.yaml").read_text())
    assert data["status"] == "reported-not-reproduced"
    checked = 0
    for table in data["tables"]:
        avg = table.get("average")
        for row in table["rows"]:
            assert len(row["values"]) == len(table["columns"]), (table["id"], row["label"])
            if avg:
                parts = [row["values"][table["columns"].index(c)] for c in avg["of"]]
                stated = row["values"][table["columns"].index(avg["column"])]
                assert abs(sum(parts) / len(parts) - stated) <= 0.051, (table["id"], row["label"])
                checked += 1
    assert checked == 18 + 8 + 3, "every Table 2/3 row's math average re-derives from its columns"
    presets = {p.stem for p in (REPO / "models").glob("*.yaml")}
    assert {m["preset"] for m in data["models"].values()} <= presets
    task_names = {
        m for p in (REPO / "tasks").rglob("*.yaml") for m in re.findall(r"^task:\s*(\S+)", p.read_text(), re.M)
    }
    mapped = {b["task"] for b in data["benchmarks"].values() if b.get("task")}
    assert mapped <= task_names, f"benchmarks mapped to missing tasks: {mapped - task_names}"


def test_paper_candidates_by_model_method_and_task() -> None:
    model = paper.paper_model(["Qwen/Qwen2.5-7B-Instruct"])
    assert model == "Qwen2.5-7B-Instruct" and paper.paper_model(["smollm2-135m"]) is None
    assert paper.candidates(model, ["em_inf"], "em_math500", "exact_match")[0].value == 73.8
    assert paper.candidates(model, ["self_consistency"], "em_leetcode", "pass@1") == []  # "–" in the paper
    (sub,) = paper.candidates(model, ["em_inf"], "em_scicode", "subproblem_accuracy")
    assert sub.value == 16.7 and sub.table == "table1" and sub.temperature == 0.1


def test_table2_coding_columns_are_eurus_runs_at_their_own_sampling() -> None:
    (base,) = paper.candidates("Eurus-2-7B-SFT", ["base"], "em_livecodebench", "pass@1")
    assert (base.value, base.table, base.benchmark) == (18.4, "table2", "LiveCodeBench")  # 94/511
    assert (base.temperature, base.top_p) == (0.2, 0.95)
    assert paper.candidates("Eurus-2-7B-SFT", ["em_rl_token"], "em_leetcode", "pass@1")[0].value == 29.5
    assert paper.candidates("Eurus-2-7B-SFT", ["em_ft_kl_n1"], "em_livecodebench", "pass@1")[0].value == 13.7  # App. C
    for task in ("em_leetcode", "em_livecodebench"):
        assert paper.candidates("Qwen2.5-Math-7B", ["base", "em_rl_token"], task, "pass@1") == []
    assert paper.candidates("Qwen2.5-Math-7B", ["base"], "em_math500", "exact_match")[0].value == 43.8
    assert {r.model for r in paper.for_tasks(["em_livecodebench", "em_leetcode"]) if r.table.startswith("table2")} == {
        "Eurus-2-7B-SFT"
    }
    assert {r.value for r in paper.for_tasks(["em_livecodebench"])} == {
        18.4,
        18.3,
        26.7,
        25.8,
        17.2,
        21.7,
        24.5,
        16.8,
        13.7,
    }


def _settings(
    model: str,
    methods: tuple,
    temperature: float = 0.1,
    top_p: float = 1.0,
    n: int | None = None,
    trained: str | None = None,
) -> matching.RunSettings:
    return matching.RunSettings(model, methods, temperature, top_p, n, trained)


@pytest.mark.parametrize(
    "settings,task,metric,value,why",
    [
        (_settings("Qwen2.5-7B-Instruct", ("sampling", "base")), "em_math500", "exact_match", 74.0, None),
        (
            _settings("Qwen2.5-7B-Instruct", ("sampling", "base"), temperature=0.7),
            "em_math500",
            "exact_match",
            None,
            "temperature 0.7, paper 0.1",
        ),
        (_settings("Qwen2.5-7B-Instruct", ("greedy", "base"), temperature=0), "em_math500", "exact_match", 74.2, None),
        (
            _settings("Qwen2.5-7B-Instruct", ("adaptive_temp",), temperature=0.1),
            "em_math500",
            "exact_match",
            74.4,
            None,
        ),
        (
            _settings("Qwen2.5-7B-Instruct", ("adaptive_temp",), temperature=0),
            "em_math500",
            "exact_match",
            None,
            "greedy; the paper sampled",
        ),
        (_settings("Qwen2.5-7B-Instruct", ("refinement",), n=2), "em_scicode", "subproblem_accuracy", 12.1, None),
        (
            _settings("Qwen2.5-7B-Instruct", ("refinement",), n=3),
            "em_scicode",
            "subproblem_accuracy",
            None,
            "N=3, paper N=2",
        ),
        (_settings("Qwen2.5-7B-Instruct", ("refinement",), n=3), "em_minerva", "exact_match", 41.5, None),
        (_settings("Qwen2.5-7B-Instruct", ("refinement",), n=3), "em_math500", "exact_match", None, "N=3, paper N=4"),
        (_settings("Qwen2.5-7B-Instruct", ("self_consistency",), n=8), "em_amc", "exact_match", None, "N=8, paper N=4"),
        (
            _settings("Eurus-2-7B-SFT", ("sampling", "base"), temperature=0.2, top_p=0.95),
            "em_livecodebench",
            "pass@1",
            18.4,
            None,
        ),
        (
            _settings("Eurus-2-7B-SFT", ("sampling", "base")),
            "em_livecodebench",
            "pass@1",
            None,
            "temperature 0.1, paper 0.2; top_p 1, paper 0.95",
        ),
        (_settings("Qwen2.5-Math-7B", ("sampling", "base")), "em_leetcode", "pass@1", None, None),
        (
            _settings("Eurus-2-7B-SFT", ("em_rl_token",), trained="checkpoint step 15"),
            "em_leetcode",
            "pass@1",
            29.5,
            None,
        ),
    ],
)
def test_a_paper_number_is_shown_only_for_the_same_model_method_and_settings(
    settings, task, metric, value, why
) -> None:
    found = matching.match(settings, task, metric)
    assert (found.reported and found.reported.value) == value
    assert (found.mismatch is None) if why is None else (why in found.mismatch)


def _edit(results: Path, config: dict | None = None, gen_kwargs: dict | None = None) -> Path:
    data = json.loads(results.read_text())
    data["config"].update(config or {})
    for task_config in data["configs"].values():
        task_config["generation_kwargs"].update(gen_kwargs or {})
    results.write_text(json.dumps(data))
    return results


def test_rows_read_model_temperature_and_n_from_the_results_file(tmp_path: Path) -> None:
    runs = {
        "t07": _edit(
            write_run(tmp_path / "a", {"em_math500": [1, 0]}, model="Qwen/Qwen2.5-7B-Instruct"),
            gen_kwargs={"temperature": 0.7},
        ),
        "n3": _edit(
            write_run(tmp_path / "b", {"em_math500": [1, 0]}, model="Qwen/Qwen2.5-7B-Instruct"),
            config={"decode_method": {"decode_method": "refinement", "decode_n": 3}},
        ),
        "n4": _edit(
            write_run(tmp_path / "c", {"em_math500": [1, 0]}, model="Qwen/Qwen2.5-7B-Instruct"),
            config={"decode_method": {"decode_method": "refinement", "decode_n": 4}},
        ),
        "trained": _edit(
            write_run(tmp_path / "d", {"em_math500": [1, 0]}, model="Qwen/Qwen2.5-Math-7B"),
            config={
                "em_checkpoint": {
                    "method": "em_rl",
                    "reward": "token",
                    "step": 70,
                    "base_model": "Qwen/Qwen2.5-Math-7B",
                }
            },
        ),
        "base": write_run(tmp_path / "e", {"em_math500": [1, 0]}, model="Qwen/Qwen2.5-Math-7B"),
    }
    names = {path.resolve(): name for name, path in runs.items()}
    rows = {names[Path(r.run)]: r for r in build_rows(load_runs([str(tmp_path)]))}
    assert rows["t07"].paper_value is None and "temperature 0.7, paper 0.1" in rows["t07"].paper_mismatch
    assert rows["n3"].paper_value is None and "N=3, paper N=4" in rows["n3"].paper_mismatch
    assert rows["n4"].paper_value == pytest.approx(0.738) and rows["n4"].paper_mismatch is None
    assert rows["trained"].paper_value == pytest.approx(0.708), "Table 2 EM-RL-token, not the Base row"
    assert "trained here (checkpoint step 70)" in rows["trained"].paper_source
    assert rows["base"].paper_value == pytest.approx(0.438) and "table2" in rows["base"].paper_source
    assert (
        "– (not comparable with table3 Qwen2.5-7B-Instruct 'Iterative refinement (N=3)': N=3, paper N=4)"
        in markdown([rows["n3"]])
    )


# ---- methods and intervals --------------------------------------------------------------------
@pytest.mark.parametrize(
    "config,gen_kwargs,expected",
    [
        ({"model": "hf"}, {"do_sample": False}, ("greedy", "Greedy (t=0)")),
        ({"model": "vllm"}, {"temperature": 0.1}, ("sampling", "Sampling (t=0.1)")),
        (
            {"model": "em_inf", "em_settings": {"em_mode": "off"}},
            {"do_sample": True, "temperature": 0.1},
            ("sampling", "Sampling (t=0.1)"),
        ),
        (
            {"model": "em_inf", "em_settings": {"em_mode": "em_inf"}},
            {"do_sample": True, "temperature": 0.1},
            ("em_inf", "EM-INF"),
        ),
        (
            {"model": "em_inf", "em_settings": {"em_mode": "off"}},
            {"do_sample": True, "em_telemetry": [{"em_mode": "em_inf"}]},
            ("em_inf", "EM-INF"),
        ),
        (
            {"model": "em_inf", "em_settings": {"em_mode": "adaptive_temp"}},
            {"do_sample": True},
            ("adaptive_temp", "Adaptive Temp"),
        ),
        (
            {
                "model": "em_inf",
                "em_settings": {"em_mode": "off"},
                "decode_method": {"decode_method": "self_consistency", "decode_n": 4},
            },
            {"do_sample": True, "temperature": 0.1},
            ("self_consistency", "Self-consistency (N=4)"),
        ),
        (
            {
                "model": "em_inf",
                "em_settings": {"em_mode": "off"},
                "model_args": {"decode_method": "refinement", "decode_n": 3},
            },
            {"do_sample": True},
            ("refinement", "Iterative refinement (N=3)"),
        ),
    ],
)
def test_methods_are_named_like_the_papers_rows(config: dict, gen_kwargs: dict, expected: tuple) -> None:
    assert describe_method(config, gen_kwargs) == expected


def test_intervals_wilson_for_binary_and_normal_for_fractions() -> None:
    low, high, how = interval([1.0] * 7 + [0.0] * 3)
    assert how == "wilson" and low == pytest.approx(0.3968, abs=1e-3) and high == pytest.approx(0.8922, abs=1e-3)
    low, high, how = interval([0.25, 0.5, 0.75, 1.0])
    assert how == "normal" and (low, high) == pytest.approx((0.625 - 1.96 * 0.1614, 0.625 + 1.96 * 0.1614), abs=2e-3)
    assert interval([1.0, 0.75, 1.0, 1.0])[1] == 1.0, "clipped to [0, 1]"


# ---- the command ------------------------------------------------------------------------------


def test_tables_have_every_model_method_task_with_n_and_ci(board: Path) -> None:
    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    assert len(rows) == 6
    assert {(r["task"], r["method"]) for r in rows} == {
        (t, m) for t in ("em_amc", "em_math500") for m in ("greedy", "sampling", "em_inf")
    }
    for r in rows:
        assert float(r["ci_low"]) <= float(r["score"]) <= float(r["ci_high"])
        assert r["n"] == ("60" if r["task"] == "em_math500" else "20")
    em = next(r for r in rows if r["method"] == "em_inf" and r["task"] == "em_math500")
    assert em["label"] == "EM-INF<b>" and float(em["paper_value"]) == pytest.approx(0.738)
    assert "reported, not reproduced" in em["paper_source"]
    md = (board / "leaderboard.md").read_text()
    assert "| Qwen/Qwen2.5-7B-Instruct | Greedy (t=0) | em_math500 (exact_match) | 60 |" in md
    assert "20 × 4" in md and "73.8† |" in md and "reported, not reproduced" in md
    assert (em["second_metric"], em["paper_metric"]) == ("math_verify", "exact_match"), "math: compared with the score"


def test_plots_are_real_pngs(board: Path) -> None:
    for name in ("accuracy_vs_tokens.png", "task_em_math500.png", "task_em_amc.png"):
        image = matplotlib.image.imread(board / "plots" / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0.01


def test_html_is_self_contained_and_escaped(board: Path) -> None:
    html = (board / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external resources"
    assert "<link" not in html and "<script src" not in html
    assert html.count("data:image/png;base64,") == 3
    assert "EM-INF&lt;b&gt;" in html and "EM-INF<b>" not in html


def test_unreadable_input_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["leaderboard", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    write_run(tmp_path / "r", {"t": [1, 0]})
    next((tmp_path / "r").rglob("samples_*.jsonl")).unlink()
    assert main(["leaderboard", str(tmp_path / "r"), "-o", str(tmp_path / "out")]) == 2
    assert "--log_samples" in capsys.readouterr().err


def test_leaderboard_json_matches_csv(board: Path) -> None:
    rows = json.loads((board / "leaderboard.json").read_text())
    assert [r["label"] for r in rows] == [r["label"] for r in csv.DictReader((board / "leaderboard.csv").open())]


def test_rows_for_runs_loaded_in_python(board: Path, tmp_path: Path) -> None:
    write_run(tmp_path, {"em_math500": [1, 1, 0, 0]}, model="meta-llama/Llama-3.1-8B-Instruct", sampling=False)
    (row,) = build_rows(load_runs([str(tmp_path)]))
    assert (row.method, row.paper_value) == ("greedy", pytest.approx(0.406)) and row.score == 0.5


def test_paper_reference_csv_is_the_yaml_flattened() -> None:
    assert (REPO / "leaderboards" / "paper_reference.csv").read_text() == paper.csv_text(), (
        "regenerate: python -c 'from em_eval.leaderboard.paper import csv_text; print(csv_text(), end=\"\")' "
        "> leaderboards/paper_reference.csv"
    )


def test_the_decoding_effect_is_in_the_rows_and_on_the_page(board: Path) -> None:
    rows = {(r["task"], r["method"]): r for r in csv.DictReader((board / "leaderboard.csv").open())}
    em, plain = rows[("em_math500", "em_inf")], rows[("em_math500", "sampling")]
    assert (float(em["entropy_before"]), float(em["entropy_after"]), float(em["adjusted_share"])) == pytest.approx(
        (1.2, 0.9, 0.6)
    )
    assert em["entropy_before"] > em["entropy_after"] and plain["entropy_before"] == plain["entropy_after"]
    assert float(plain["adjusted_share"]) == 0.0
    html = (board / "index.html").read_text()
    effect = html[html.index('id="effect-table"') : html.index("</table>", html.index('id="effect-table"'))]
    assert effect.count("<tr>") == 1 + 6 and "-0.300" in effect and ">60<" in effect


def test_coinciding_points_are_spread_evenly_and_lone_points_stay() -> None:
    from em_eval.leaderboard.plots import spread_ties

    offsets = spread_ties([(48.0, 0.0), (48.0, 0.0), (90.0, 20.0), (48.1, 0.4)], width=2.0)
    assert offsets == [-1.0, 0.0, 0.0, 1.0]
    assert spread_ties([(10.0, 50.0), (10.0, 80.0)], width=2.0) == [0.0, 0.0], "same x, different score: apart already"


def test_a_page_without_paper_numbers_promises_no_paper_markers_and_shows_no_stray_dots(tmp_path: Path) -> None:
    from em_eval.cli import main

    write_run(tmp_path / "run", {"em_math500": [0, 0, 0], "em_smoke": [1, 0, 0]}, model="tiny-model", math_flags=False)
    assert main(["leaderboard", str(tmp_path / "run"), "-o", str(tmp_path / "board")]) == 0
    html = (tmp_path / "board" / "index.html").read_text()
    assert "◇ = paper" not in html and "the value written on each bar" in html
    cells = re.findall(r"<tbody>.*?</tbody>", html[html.index('id="samples"') :], re.S)
    assert cells and not any("·" in c for c in cells), "flags a task does not report leave the cell empty"


def test_story_counts_responses_that_differ_and_weights_the_adjusted_share(tmp_path: Path) -> None:
    from em_eval.em_inf.trace import TokenStep
    from em_eval.leaderboard.story import compare
    from em_eval.results import load_run

    plain = load_run(write_run(tmp_path / "a", {"em_smoke": [1, 0, 1, 0]}, entropy=(1.0, 1.0, 0.0)))
    em = load_run(write_run(tmp_path / "b", {"em_smoke": [1, 1, 1, 0]}, em_mode="em_inf", entropy=(1.0, 0.7, 0.5)))
    step = TokenStep("x", 1.0, 0.7, True, 0.5, 0.6, 0.25)
    (row,) = compare(plain, em, 0.7, {"em_smoke": [[step, step], [step]]})
    assert (row.task, row.changed, row.total, row.temperature) == ("em_smoke", 1, 4, 0.7)
    assert row.adjusted_share == pytest.approx(0.5) and row.mean_tv == pytest.approx(0.25)


# ---- a second verdict: UGPhysics' accuracy_paper, math's math_verify ----------------------------
UGP_CORRECT = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]  # accuracy, the correct verdict: 5 of 10
UGP_PAPER = [1, 1, 1, 0, 0, 0, 1, 0, 1, 1]  # accuracy_paper, the paper's judge: 6 of 10, differs on 3


def test_ugphysics_paper_numbers_compare_with_accuracy_paper_only() -> None:
    settings = _settings("Qwen2.5-7B-Instruct", ("sampling", "base"))
    found = matching.match(settings, "em_ugphysics", "accuracy", "accuracy_paper")
    assert (found.reported.value, found.metric, found.mismatch) == (23.4, "accuracy_paper", None)
    older = matching.match(settings, "em_ugphysics", "accuracy")
    assert older.reported is None and older.mismatch == "the paper reports accuracy_paper; this run has accuracy"
    math = matching.match(settings, "em_math500", "exact_match", "math_verify")
    assert (math.reported.value, math.metric) == (74.0, "exact_match"), "Table 3's math columns are exact_match"


@pytest.fixture(scope="module")
def ugp_board(tmp_path_factory) -> Path:
    """A UGPhysics run that logs both verdicts (Qwen2.5-7B-Instruct, Table 3's settings) and an older one with
    only ``accuracy`` (Llama-3.1-8B-Instruct, greedy), then the leaderboard."""
    root = tmp_path_factory.mktemp("ugp")
    disagree = [float(a != b) for a, b in zip(UGP_CORRECT, UGP_PAPER)]
    write_run(
        root / "both",
        {"em_ugphysics": UGP_CORRECT},
        model="Qwen/Qwen2.5-7B-Instruct",
        metric="accuracy",
        math_flags=False,
        extra={
            "accuracy_paper": UGP_PAPER,
            "graders_disagree": disagree,
        },
        records=[
            [{"correct": bool(c), "parts": [bool(c)], "predicted": [f"{i}.5", "x"] if i else None}]
            for i, c in enumerate(UGP_CORRECT)
        ],
    )
    write_run(
        root / "older",
        {"em_ugphysics": UGP_CORRECT},
        model="meta-llama/Llama-3.1-8B-Instruct",
        metric="accuracy",
        math_flags=False,
        sampling=False,
    )
    out = root / "board"
    assert main(["leaderboard", str(root / "both"), str(root / "older"), "-o", str(out)]) == 0
    return out


def test_ugphysics_rows_show_both_verdicts_and_the_paper_number_beside_accuracy_paper(ugp_board: Path) -> None:
    rows = {r["model"]: r for r in csv.DictReader((ugp_board / "leaderboard.csv").open())}
    both, older = rows["Qwen/Qwen2.5-7B-Instruct"], rows["meta-llama/Llama-3.1-8B-Instruct"]
    assert (both["metric"], float(both["score"]), both["second_metric"], float(both["second_score"])) == (
        "accuracy",
        0.5,
        "accuracy_paper",
        0.6,
    )
    assert float(both["second_ci_low"]) < 0.6 < float(both["second_ci_high"])
    assert (float(both["paper_value"]), both["paper_metric"]) == (pytest.approx(0.234), "accuracy_paper")
    assert float(both["graders_disagree"]) == pytest.approx(0.3), "graders_disagree: 3 of 10 problems"
    assert (older["second_metric"], older["paper_value"], older["graders_disagree"]) == ("", "", "")
    assert older["paper_mismatch"] == "the paper reports accuracy_paper; this run has accuracy"
    md = (ugp_board / "leaderboard.md").read_text()
    assert "| 50.0 [" in md and "| accuracy_paper 60.0 [" in md and "| 23.4† vs accuracy_paper |" in md
    assert "| – (the paper reports accuracy_paper; this run has accuracy) |" in md
    assert "| Table | Model | Row | UGPhys. (accuracy_paper) |" in md, "the paper's table names what it compares with"


def test_ugphysics_page_shows_the_second_verdict_and_flags_where_the_judges_differ(ugp_board: Path) -> None:
    html = (ugp_board / "index.html").read_text()
    board = html[html.index('id="leaderboard-table"') : html.index("</table>", html.index('id="leaderboard-table"'))]
    assert 'data-value="0.6" title="accuracy_paper: 95% CI' in board and "vs accuracy_paper" in board
    drills = html[html.index('<details class="drill"') :]
    assert drills.count("they differ on 3 of 10 problems (graders_disagree)") == 1, "only the run that logs both"
    flagged = re.findall(r'<tr data-wrong="\d"[^>]* data-graders_disagree="1"', drills)
    assert len(flagged) == 3
    assert drills.count('class="badge b-graders_disagree" title="accuracy and accuracy_paper') == 3
    assert drills.count('<div class="muted second" title="accuracy_paper">accuracy_paper 1.00</div>') == 6
    assert "✕ = second verdict" in html and "◇ = paper" in html and ">UGPhys. (accuracy_paper)</th>" in html
    assert "<td>2.5, x</td>" in drills and drills.count("<td>–</td>") == 1 + 10, "UGPhysics' judged answers"


def test_a_dollar_in_a_model_or_task_name_is_drawn_as_text_not_mathtext(tmp_path: Path) -> None:
    """Two "$" made matplotlib parse the name as mathtext; "$\\frac$" raised and no page was written."""
    name = "org/$\\frac$-7B"
    write_run(tmp_path / "run", {"em_math500": [1, 0, 0], "t$x$": [1, 1]}, model=name)
    assert main(["leaderboard", str(tmp_path / "run"), "-o", str(tmp_path / "board")]) == 0
    assert name in (tmp_path / "board" / "leaderboard.md").read_text()
    for png in ("accuracy_vs_tokens.png", "task_em_math500.png", "task_t_x.png"):
        assert matplotlib.image.imread(tmp_path / "board" / "plots" / png).std() > 0.01
    assert matplotlib.rcParams["text.parse_math"], "the plain-text setting stays inside the plots"
