"""Helpers for the history tests: real PNG bytes, records shaped like ``Provenance.to_record()``,
and a writer process (``python -m tests.support.history_writer``) for the multi-process tests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["REPO", "png_bytes", "make_record", "writer_command", "run_writer", "assert_every_row_has_its_files"]

REPO = Path(__file__).resolve().parents[2]


def png_bytes(color: tuple[int, int, int] = (200, 40, 20), size: tuple[int, int] = (32, 24)) -> bytes:
    """A real PNG, as Pillow writes it (no text chunks)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_record(**overrides: Any) -> dict[str, Any]:
    """A record in the shape the client's ``Provenance.to_record()`` gives."""
    record: dict[str, Any] = {
        "schema": "vomni_nb/1",
        "kind": "image",
        "model": "Tongyi-MAI/Z-Image-Turbo",
        "server_url": "http://127.0.0.1:8091",
        "prompt": "a lighthouse at dusk",
        "params": {"size": "32x24", "num_inference_steps": 8, "guidance_scale": 3.5, "negative_prompt": "blurry"},
        "seed": 7,
        "timings": {"request_s": 0.25, "total_s": 0.3},
        "created_at": "2025-01-02T03:04:05+00:00",
        "request_id": "req-1",
    }
    record.update(overrides)
    return record


def writer_command(db: Path, name: str, count: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.history_writer", str(db), name, str(count), *extra]


def run_writer(db: Path, name: str, count: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a writer process (see history_writer.py); the caller waits for or kills it."""
    return subprocess.Popen(
        writer_command(db, name, count, *extra),
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_every_row_has_its_files(db: Path) -> int:
    """Open the database with plain sqlite3: it must be intact, and every row's files on disk with their hash."""
    import hashlib
    import sqlite3

    files_dir = db.with_name(f"{db.stem}-files")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT ef.entry_id, f.sha256, f.relpath FROM entry_files ef JOIN files f ON f.sha256 = ef.sha256"
        ).fetchall()
        for entry_id, sha, relpath in rows:
            path = files_dir / relpath
            assert path.is_file(), f"entry {entry_id} is saved but its file {relpath} is missing"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{relpath} does not hash to its name"
        orphans = conn.execute("SELECT count(*) FROM entry_files WHERE sha256 NOT IN (SELECT sha256 FROM files)")
        assert orphans.fetchone()[0] == 0
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()
