"""The README stays a ten-minute read, and every relative link of the README and docs/*.md leads somewhere."""
from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 250
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced blocks and code spans, where brackets are code rather than links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(m[1]) for m in re.finditer(r"^#+ (.+)$", prose(page.read_text()), re.M)}


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"[a-z]+:", target)]  # https:, mailto: are not checked here


def test_the_readme_is_at_most_250_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into a page under docs/"


def test_the_readme_shows_the_two_commands():
    blocks = "".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S))
    assert re.search(r"^make run\b", blocks, re.M) and re.search(r"^make test\b", blocks, re.M)


def test_every_relative_link_points_to_an_existing_file_and_heading():
    broken = []
    for page in [README, *PAGES]:
        for target in relative_links(page):
            path, _, fragment = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_readme_contents_and_links_back():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(README)}
    for page in PAGES:
        assert page.resolve() in linked, f"README.md does not link docs/{page.name}"
        assert "../README.md" in relative_links(page), f"docs/{page.name} does not link back to the README"


def test_the_link_check_sees_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# A page\n\n## Tear down\n\n[ok](a.md#tear-down) [gone](b.md) "
                                   "[lost](a.md#supported-regions) `[code](not-a-link.md)`\n")
    page = tmp_path / "a.md"
    assert relative_links(page) == ["a.md#tear-down", "b.md", "a.md#supported-regions"]
    assert anchors(page) == {"a-page", "tear-down"}
    assert anchor("IAM, offline") == "iam-offline"
