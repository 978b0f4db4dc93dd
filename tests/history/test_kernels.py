"""Two real kernels (jupyter_client), each generating 50 images at once through the client into one
history: no row lost, nothing corrupt, every file on disk under its hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.history import assert_every_row_has_its_files
from tests.support.kernels import KernelSession
from vomni_nb._history import HistoryStore

SWEEP = """
import json, os, time
from vomni_nb import OmniClient
while not os.path.exists({go!r}):
    time.sleep(0.01)
with OmniClient({url!r}) as client:
    batch = client.images({prompt!r}, seeds=list(range(50)), size="64x64", concurrency=8)
print(json.dumps({{"ids": batch.history_ids, "notes": [i.stored.note for i in batch], "seeds": [i.seed for i in batch]}}))
"""


def _printed(messages: list[dict]) -> dict:  # type: ignore[type-arg]
    text = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_two_kernels_generating_at_once_lose_nothing(image_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "shared" / "history.sqlite3"
    monkeypatch.setenv("VOMNI_HISTORY", str(db))  # both kernels inherit it
    go = tmp_path / "go"
    kernels = [KernelSession(), KernelSession()]
    try:
        requests = [kernel.send(SWEEP.format(go=str(go), url=image_server.url, prompt=f"kernel {index}: a fox"),
                                allow_stdin=False) for index, kernel in enumerate(kernels)]
        go.touch()  # both sweeps start together
        outcomes = [kernel.collect(request, timeout=540) for kernel, request in zip(kernels, requests)]
    finally:
        for kernel in kernels:
            kernel.close()
    printed = []
    for reply, messages in outcomes:
        assert reply["status"] == "ok", [m["content"] for m in messages if m["msg_type"] == "error"]
        printed.append(_printed(messages))
    for result in printed:
        assert result["notes"] == [None] * 50 and sorted(result["seeds"]) == list(range(50))
    ids = [entry_id for result in printed for entry_id in result["ids"]]
    assert len(ids) == len(set(ids)) == 100

    assert assert_every_row_has_its_files(db) == 100
    with HistoryStore(db) as store:
        for index, result in enumerate(printed):
            entries = store.search(f"kernel {index}", limit=None)
            assert sorted(e.id for e in entries) == sorted(result["ids"])
            assert sorted(e.seed for e in entries) == list(range(50))  # type: ignore[type-var]
            assert all(e.status == "ok" and len(e.files) == 1 and e.files[0].exists for e in entries)
