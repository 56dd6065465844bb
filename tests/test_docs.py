"""The README and docs/ hold together: every relative link points at a file of the repository, and every anchor
(`page.md#heading`, `#heading`) at a heading of that page, as GitHub names them."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: pages the README and docs link to, whose own links must hold too: how weights are made, and the model cards
OTHERS = [ROOT / "training" / "README.md", *sorted((ROOT / "training" / "results").glob("*.md")),
          *sorted((ROOT / "weights").glob("*/README.md"))]
LINK = re.compile(r"(?<!\\)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    text = re.sub(r"`|\*\*|\*", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen, fence = set(), {}, False
    for line in page.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#{1,6} (.*)", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z]+:", target)]


def test_the_pages_have_links_to_check():
    assert len(PAGES) >= 8
    assert sum(len(links(p)) for p in PAGES) > 50


@pytest.mark.parametrize("page", PAGES + OTHERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading '{anchor}' in {dest.name})")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme_and_has_contents():
    readme = set(links(ROOT / "README.md"))
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"
        assert "## Contents" in page.read_text(encoding="utf-8"), f"docs/{page.name} has no table of contents"


def test_the_readme_stays_the_front_door():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").split("\n")) <= 300


def test_a_broken_anchor_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Some heading, with `code`\n\n[ok](#some-heading-with-code) [bad](#nope)\n")
    assert "some-heading-with-code" in anchors(page) and "nope" not in anchors(page)
