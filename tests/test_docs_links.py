"""Every relative link in README.md and docs/*.md resolves (issue 30): the file exists, and
an anchor (#section) names a heading of the target page as GitHub spells it. Offline, no
network: links to http(s) and mailto are not followed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str, inline_code: bool = False) -> list[str]:
    """The lines outside fenced and indented code blocks, with inline code removed unless asked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") or line.startswith("\t"):
            continue
        lines.append(line if inline_code else re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(), inline_code=True):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out |= {m for line in path.read_text().splitlines() for m in re.findall(r'<a (?:name|id)="([^"]+)"', line)}
    return out


def links(path: Path) -> list[str]:
    return [m.group(1) for line in prose(path.read_text()) for m in LINK.finditer(line)]


def broken(path: Path) -> list[str]:
    bad = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page):
    assert not broken(page), f"{page.relative_to(REPO)}: " + "; ".join(broken(page))


def test_the_slugs_are_githubs():
    assert slug("What a config costs: `symflow plan`") == "what-a-config-costs-symflow-plan"
    assert slug("The paper's claims: verdicts") == "the-papers-claims-verdicts"
    assert slug("ImageNet: Fig. 5 and the appendix") == "imagenet-fig-5-and-the-appendix"
    assert slug("6. When a claim is wrong") == "6-when-a-claim-is-wrong"


def test_the_readme_is_a_first_read():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_the_generated_blocks_live_on_their_pages():
    from symflow.claims import README_BEGIN, README_END

    default_run = (REPO / "docs" / "default-run.md").read_text()
    assert README_BEGIN in default_run and README_END in default_run
    assert "<!-- reruns:begin -->" in (REPO / "docs" / "configuration.md").read_text()
    readme = (REPO / "README.md").read_text()
    assert README_BEGIN not in readme and "<!-- reruns:begin -->" not in readme
