"""The architecture page's module list (``docs/architecture.md``) names every module of ``em_eval/`` and nothing
that does not exist; the README's links to the docs pages and the benchmark cards resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^(em_eval/\S*?),? (?:(\S+\.py)\s)?")  # "em_eval/a/b.py  ..." or "em_eval/x.py, y.py  ..."
LINK = re.compile(r"\]\(((?:docs|tasks)/[^)#]+)(?:#[^)]*)?\)")


def listed_modules(page: str) -> set[str]:
    """The paths the page's layout block names (a folder ends in ``/``)."""
    block = page.split("```\n", 2)[1]
    names: set[str] = set()
    for line in block.splitlines():
        if m := ENTRY.match(line + " "):
            names.add(m.group(1))
            if m.group(2):
                names.add(f"{m.group(1).rsplit('/', 1)[0]}/{m.group(2)}")
    return names


def unlisted(names: set[str]) -> list[str]:
    """``em_eval`` modules neither named nor inside a named folder (subpackages' ``__init__.py`` excepted)."""
    folders = tuple(n for n in names if n.endswith("/"))
    modules = (p.relative_to(ROOT).as_posix() for p in (ROOT / "em_eval").rglob("*.py"))
    counted = (m for m in modules if not (m.endswith("/__init__.py") and m.count("/") > 1))
    return sorted(m for m in counted if m not in names and not m.startswith(folders))


def test_the_architecture_page_lists_every_module_and_only_real_ones() -> None:
    names = listed_modules((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert len(names) > 50, "the layout block was not found"
    assert unlisted(names) == [], "add these modules to docs/architecture.md's layout block"
    assert sorted(n for n in names if not (ROOT / n).exists()) == [], "listed in docs/architecture.md, not in em_eval/"


def test_the_module_list_check_notices_a_missing_and_a_stale_name() -> None:
    names = listed_modules((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert unlisted(names - {"em_eval/metrics.py"}) == ["em_eval/metrics.py"]
    assert not (ROOT / "em_eval/analysis/sweep.py").exists()


def test_the_readme_links_every_card_and_docs_page_and_they_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = set(LINK.findall(readme))
    assert sorted(link for link in links if not (ROOT / link).exists()) == []
    cards = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tasks").glob("*/README.md")}
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert cards | pages <= links, sorted((cards | pages) - links)
