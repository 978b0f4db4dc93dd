"""The README's promises: the two commands at the top, and its first curl example writes a PNG."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def test_first_curl_example_writes_a_png(start_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    block = README.split("## vomni-sim in one minute", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    start_line, curl_text = block.strip().split("\n", 1)
    sim_args = shlex.split(start_line.rstrip("&"))
    assert sim_args[0].endswith("vomni-sim") and sim_args[2:4] == ["--port", "8091"]
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    server = start_sim(sim_args[1])  # same model, on a free port instead of 8091
    command = shlex.split(curl_text.replace("\\\n", " ").replace("127.0.0.1:8091", f"127.0.0.1:{server.port}"))
    subprocess.run(command, cwd=tmp_path, check=True, timeout=60)
    written = tmp_path / re.search(r"-o (\S+)", curl_text).group(1)  # type: ignore[union-attr]
    with Image.open(written) as image:
        assert image.format == "PNG" and image.size == (512, 512)
