"""Binder: repo2docker cannot run here (no Docker, no network), so this test takes the steps it takes, in
its order, in a fresh environment: copy the repository, `pip install -r binder/requirements.txt` from the
repository root, run `binder/postBuild`, then `binder/start COMMAND`, where the command executes the
quickstart as a reader's "Run All" would. Everything is installed offline, from the checkout.

What stands in for Binder's base image: its Python already holds Jupyter (JupyterLab 4, Notebook 7,
ipykernel). Here that layer is this test environment's site-packages, seen by the new environment through
a .pth file, and everything binder/requirements.txt installs goes into the new environment itself.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from tests.support.notebooks import QUICKSTART, ROOT, errors, isolate, outputs
from tools.demo import sim_models
from vomni_nb.server import ServerManager

BINDER = ROOT / "binder"


def test_binder_files_are_what_repo2docker_reads() -> None:
    requirements = [line.split("#", 1)[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    # A local path makes repo2docker copy the repository in before installing (and pip resolves it from the root).
    assert ".[sim]" in requirements
    assert "espeak-ng" in (BINDER / "apt.txt").read_text().split()
    for script in ("postBuild", "start"):
        mode = (BINDER / script).stat().st_mode
        assert mode & stat.S_IXUSR, f"binder/{script} must be executable (repo2docker runs it directly)"
    post_build = [line for line in (BINDER / "postBuild").read_text().splitlines() if line and not line.startswith("#")]
    assert post_build[0] == "set -e"
    start = [line for line in (BINDER / "start").read_text().splitlines() if line.strip()]
    assert start[-1] == 'exec "$@"'


def test_binder_start_warms_what_the_quickstart_starts() -> None:
    warmed = re.findall(r'"([\w.-]+/[\w.-]+)"', (BINDER / "start").read_text())
    assert warmed == sim_models(QUICKSTART)


def test_the_readme_badge_opens_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)]*\?urlpath=lab/tree/([^)\s]+)\)", readme)
    assert badge is not None and badge.group(1) == f"notebooks/{QUICKSTART.name}"


def _copy_repository(target: Path) -> None:
    """The repository as Binder clones it: every file git tracks (or would track), nothing it ignores."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(source.stat().st_mode)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


_WHICH = "import sys, vomni_nb\nprint('kernel:', sys.prefix)\nprint('package:', vomni_nb.__file__)"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_binder_steps_in_a_fresh_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    repo, image, out_dir = tmp_path / "repo", tmp_path / "image", tmp_path / "out"
    _copy_repository(repo)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(image)], check=True, timeout=120)
    site = Path(sysconfig.get_paths(vars={"base": str(image), "platbase": str(image)})["purelib"])
    (site / "binder-base-image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{image / 'bin'}{os.pathsep}{env['PATH']}"
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")  # no kernelspec of this machine's user
    python = str(image / "bin" / "python")

    # 1. repo2docker: `pip install -r binder/requirements.txt` in the repository root (offline here).
    _run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "-q", "-r", "binder/requirements.txt"],
         repo, env)
    assert (site / "vomni_nb" / "widgets" / "player.js").is_file(), "the wheel carries the widgets' JS"
    assert (image / "bin" / "vomni-sim").is_file()
    # 2. postBuild, run directly as repo2docker does.
    _run(["./binder/postBuild"], repo, env)
    # 3. start, wrapping what the image runs: here, the quickstart executed as "Run All" would, then a
    #    notebook that says which Python and which vomni_nb the kernel had.
    which = repo / "notebooks" / "which.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_WHICH)]), which)
    execute = [python, "-m", "nbconvert", "--to", "notebook", "--execute", "--output-dir", str(out_dir)]
    script = f"{' '.join(execute)} notebooks/{QUICKSTART.name} && {' '.join(execute)} notebooks/which.ipynb"
    try:
        said = _run(["./binder/start", "bash", "-c", script], repo, env)
        for model in sim_models(QUICKSTART):
            assert f"binder/start: vomni-sim serving {model} (simulated)" in said
        executed = nbformat.read(out_dir / QUICKSTART.name, as_version=4)
        assert errors(executed) == []
        texts = "\n".join(str(out.get("data", {}).get("text/plain", "")) for out in outputs(executed))
        # The notebook's `%omni_server start ... --sim` lines reused what start had started.
        assert texts.count("✓ reusing") == 3, texts
        assert any("<audio controls" in out.get("data", {}).get("text/html", "") for out in outputs(executed))
        kernel = "".join(out.get("text", "") for out in outputs(nbformat.read(out_dir / "which.ipynb", as_version=4)))
        assert f"kernel: {image}" in kernel and f"package: {site / 'vomni_nb'}" in kernel, kernel
    finally:
        # start keeps its servers for the whole session; here the session ends with the test.
        manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
        for status in manager.list_servers():
            manager.stop(status.name)
