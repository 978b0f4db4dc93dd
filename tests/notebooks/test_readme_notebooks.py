"""The README's part about the notebooks: its table lists each of them, in order, and its pictures exist."""

from __future__ import annotations

import re

from tests.support.notebooks import ROOT, TEACHING_ORDER

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_lists_the_notebooks_in_teaching_order() -> None:
    table = README.split("## The notebooks", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `(0\d_\w+)` \|", table, flags=re.MULTILINE) == TEACHING_ORDER


def test_the_readme_pictures_are_in_the_repository() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert "docs/quickstart-jupyterlab.png" in pictures
    for picture in pictures:
        if not picture.startswith("http"):
            assert (ROOT / picture).is_file(), picture
