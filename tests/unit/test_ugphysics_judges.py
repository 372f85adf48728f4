"""UGPhysics' two verdicts against the recorded bank (tests/data/ugphysics_judge_oracle.json: responses on real
golds, the official verdict of EM_PT cafe72e's ``Judger.auto_judge`` at precision 1e-2 as recorded by running it,
and a hand label): ``accuracy_paper`` reproduces the official verdict on every case, ``accuracy`` is right on every
case (so wherever the official judge is right). Sympy runs in this process (``in_process``), on known inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from em_eval.tasks.ugphysics.calls import in_process
from em_eval.tasks.ugphysics.judge import judge
from em_eval.tasks.ugphysics.paper_judge import paper_verdict
from em_eval.tasks.ugphysics.paper_text import remove_constants

BANK = json.loads((Path(__file__).parents[1] / "data" / "ugphysics_judge_oracle.json").read_text())
CASES = BANK["cases"]


def _correct(response: str, answers: str, answer_type: str | None = None) -> bool:
    return judge(response, {"answers": answers, "answer_type": answer_type, "unit": None}, in_process).correct


def _paper(response: str, answers: str) -> bool:
    return paper_verdict(response, answers, in_process)


def test_the_bank_is_the_official_judges_record_on_real_golds() -> None:
    assert BANK["commit"].startswith("cafe72e") and "auto_judge" in BANK["driver"]
    assert "precision=1e-2" in BANK["driver"]
    assert len(CASES) >= 150 and len({c["id"] for c in CASES}) == len(CASES)
    assert {c["language"] for c in CASES} == {"en", "zh"}
    assert all(c["note"] for c in CASES if c["official"] != c["label"]), "every official mistake says why"
    wrong = [c for c in CASES if c["official"] != c["label"]]
    assert 40 <= len(wrong) <= 70 and any(c["official"] for c in wrong) and any(not c["official"] for c in wrong)


def test_accuracy_paper_reproduces_every_official_verdict() -> None:
    differ = [c["id"] for c in CASES if _paper(c["response"], c["answers"]) != c["official"]]
    assert differ == []


def test_accuracy_is_right_on_every_case_so_wherever_the_official_judge_is() -> None:
    wrong = [c["id"] for c in CASES if judge(c["response"], c, in_process).correct != c["label"]]
    assert wrong == []


# ---- the official judge's quirks, kept in accuracy_paper and fixed in accuracy --------------------------------


def test_scientific_notation_mantissas_without_exponents() -> None:
    assert _paper(r"\boxed{6000}", r"\boxed{6}") and not _correct(r"\boxed{6000}", r"\boxed{6}")
    sci = r"\boxed{1.85 \times 10^{-4}}"
    assert _paper(r"\boxed{1.85 \times 10^{-3}}", sci) and not _correct(r"\boxed{1.85 \times 10^{-3}}", sci)


def test_constant_deletion_eats_letters_of_other_symbols() -> None:
    assert remove_constants(r"\theta + R_{e} h") == r"\tta + _{}"
    gold = r"\boxed{\nu = \frac{2eV}{h}}"
    assert _paper(r"\boxed{\nu = \frac{2eV}{\hbar}}", gold) and not _correct(r"\boxed{\nu = \frac{2eV}{\hbar}}", gold)


def test_a_percent_sign_swallows_the_comma_after_it() -> None:
    gold = r"\boxed{50\%, 3}"
    assert _paper(r"\boxed{503}", gold) and not _paper(r"\boxed{50, 3}", gold)
    assert _correct(r"\boxed{50, 3}", gold) and not _correct(r"\boxed{503}", gold)


def test_extraction_after_the_last_therefore_and_after_the_answer_is() -> None:
    gold = r"\boxed{3 k T}"
    late = r"\boxed{3kT}. Therefore we are done."
    assert not _paper(late, gold) and _correct(late, gold)
    assert _paper("Therefore, the answer is 3kT.", gold) and _correct("Therefore, the answer is 3kT.", gold)
    assert not _paper("I cannot tell.", gold) and not _correct("I cannot tell.", gold)


def test_several_answers_match_in_any_order_in_both() -> None:
    gold = r"\boxed{281, 761}"
    for response in (r"\boxed{761, 281}", r"\boxed{281, 761}"):
        assert _paper(response, gold) and _correct(response, gold)
    assert not _paper(r"\boxed{281}", gold) and not _correct(r"\boxed{281, 761, 900}", gold)


# ---- kinds the answer-type judge got wrong where the official one is right (issue 23) --------------------------


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        (r"N_A E_v", r"E_v N_A"),
        (r"2 e n_i \sqrt{\mu_n \mu_p}", r"2n_i e \sqrt{\mu_n \mu_p}"),
        (r"\frac{q V_{bi}}{k T}", r"\frac{V_{bi} q}{kT}"),
        (
            r"\frac{L_{n} \sigma_p}{L_p \sigma_n}",
            r"\frac{\sigma_{\mathrm{p}} L_{\mathrm{n}}}{\sigma_{\mathrm{n}} L_{\mathrm{p}}}",
        ),
        (
            r"\frac{\mu_p - \mu_n}{q n_i (\mu_p + \mu_n)}",
            r"\frac{1}{q n_{i}} \cdot \frac{\mu_{p} - \mu_{n}}{\mu_{p} + \mu_{n}}",
        ),
    ],
)
def test_subscripted_symbols_in_another_product_order(pred: str, gold: str) -> None:
    assert _correct(rf"\boxed{{{pred}}}", rf"\boxed{{{gold}}}")


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        (r"I_s", r"I_d"),
        (r"E_v", r"E_c"),
        (r"e V", r"E V"),
        (r"i \omega \tau", r"j \omega \tau"),
        (r"\frac{1}{R}", r"\frac{1}{r}"),
    ],
)
def test_symbols_are_not_constants(pred: str, gold: str) -> None:
    assert not _correct(rf"\boxed{{{pred}}}", rf"\boxed{{{gold}}}")


def test_numbers_decimal_for_exact_rounding_approx_and_no_box() -> None:
    assert _correct(r"\boxed{2.236}", r"\boxed{\sqrt{5}}") and not _correct(r"\boxed{2.3}", r"\boxed{\sqrt{5}}")
    assert _correct(r"\boxed{3.46}", r"\boxed{3.5}") and not _correct(r"\boxed{3.44}", r"\boxed{3.5}")
    assert _correct(r"\boxed{4.86 \times 10^{23}}", r"\boxed{4.9 \times 10^{23}}")
    assert _correct(r"\boxed{n \approx 3.5}", r"\boxed{3.5}") and _correct(r"\boxed{\approx 3.5}", r"\boxed{3.5}")
    assert _correct("The answer is $3.5$ eV.", r"\boxed{3.5}") and not _correct("The answer is $4$ eV.", r"\boxed{3.5}")


def test_chinese_true_false_and_option_sets() -> None:
    assert _correct(r"\boxed{能}", r"\boxed{Yes}") and _correct(r"\boxed{不能}", r"\boxed{No}")
    assert not _correct(r"\boxed{能}", r"\boxed{No}") and _paper(r"\boxed{不能}", r"\boxed{No}")
    assert _correct(r"\boxed{2, 1}", r"\boxed{1, 2}", "MC") and _correct(r"\boxed{(B)}", r"\boxed{b}", "MC")
    assert _correct(r"\boxed{B: the hole current}", r"\boxed{b}", "MC")
    assert not _correct(r"\boxed{A, B}", r"\boxed{b}", "MC")


def test_one_response_spends_at_most_its_budget_on_sympy(monkeypatch) -> None:
    from em_eval.tasks.ugphysics import judge as judge_module

    timeouts: list[float] = []

    def record(op: str, args: list, timeout_s: float) -> bool:
        timeouts.append(timeout_s)
        return False

    doc = {"answers": r"\boxed{3 k T, E_C - 0.27}"}
    assert not judge(r"\boxed{2 k T, E_V}", doc, record).correct and 0 < max(timeouts) <= 5.0
    monkeypatch.setattr(judge_module, "RESPONSE_BUDGET_S", 0.0)
    timeouts.clear()
    assert not judge(r"\boxed{2 k T, E_V}", doc, record).correct and timeouts == []
