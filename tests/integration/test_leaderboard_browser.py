"""The leaderboard page in a real headless Chromium (Playwright driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

from pathlib import Path

from headless_browser import open_page


# ---- a real browser ---------------------------------------------------------------------------
def test_page_renders_without_script_errors_and_sorts_in_chromium(board: Path, tmp_path: Path) -> None:
    with open_page(board / "index.html") as (page, errors):
        table = page.locator("#leaderboard-table")
        assert table.locator("tbody tr").count() == 6

        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]

        def sort_by(name: str) -> tuple[str, list[float]]:
            header = table.locator("thead th").nth(headers.index(name))
            header.click()
            values = table.locator(f"tbody tr td:nth-child({headers.index(name) + 1})").evaluate_all(
                "cells => cells.map(c => parseFloat(c.getAttribute('data-value')))"
            )
            return header.get_attribute("aria-sort"), values

        order, scores = sort_by("Score %")
        assert order == "ascending" and scores == sorted(scores) and len(set(scores)) > 1
        assert sort_by("Score %") == ("descending", sorted(scores, reverse=True))
        order, tokens = sort_by("tokens")
        assert order == "ascending" and tokens == sorted(tokens) and tokens != scores
        order, second = sort_by("2nd verdict %")  # math-verify's scores
        assert order == "ascending" and second == sorted(second) and second != sorted(scores)

        widths = page.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 3 and min(widths) > 200, "the inlined charts decode"

        drill = page.locator("details.drill", has_text="EM-INF<b> — em_math500")
        drill.locator("summary").click()
        rows = drill.locator("tbody tr")
        total = rows.count()
        page.locator(".filters input[data-filter='hit_token_limit']").check()
        visible = drill.locator("tbody tr:visible").count()
        flagged = drill.locator("tbody tr[data-hit_token_limit='1']").count()
        assert visible == flagged and 0 < flagged < total
        assert drill.locator("tbody tr:visible .b-hit_token_limit").count() == flagged
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert not errors, errors
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_the_analyses_section_shows_the_lab_plots_in_chromium(tmp_path: Path) -> None:
    from em_eval.cli import main
    from synthetic_runs import write_run

    write_run(
        tmp_path / "base", {"em_t": [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]}, model="base", entropy=(1.0, 1.0, 0.0)
    )
    write_run(
        tmp_path / "ckpt", {"em_t": [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]]}, model="ckpt", entropy=(0.5, 0.5, 0.0)
    )
    board, specs = tmp_path / "board", [f"base={tmp_path / 'base'}", f"ckpt={tmp_path / 'ckpt'}"]
    assert main(["passk", *specs, "-o", str(board)]) == 0
    assert main(["calibration", *specs, "-o", str(board), "--signals", "neg_entropy", "agreement"]) == 0
    assert main(["leaderboard", *specs, "-o", str(board)]) == 0
    with open_page(board / "index.html") as (page, errors):
        section = page.locator("#analyses + p + .charts")
        widths = section.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 2 and min(widths) > 200, "the pass@k and reliability plots decode"
        page.locator("#analyses").scroll_into_view_if_needed()
        section.screenshot(path=str(tmp_path / "analyses.png"))
    assert not errors, errors
    assert (tmp_path / "analyses.png").stat().st_size > 10_000
