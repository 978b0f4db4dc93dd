"""A separate process that records entries into a history database (for the multi-process tests).

    python -m tests.support.history_writer DB NAME COUNT [--go FILE] [--pause STAGE:SIGNAL] [--like]

Each entry has one PNG whose pixels depend on NAME and the index, except every fifth, which is the
same for every writer and carries a second file, raw PCM bytes that are identical across writers
(so two processes store the same content at once; a PNG's embedded recipe makes its bytes differ). Every third prompt is
about a fox. ``--go FILE`` waits for FILE to exist before writing, so writers start together.
``--pause STAGE:SIGNAL`` sets the store's test pause for the last entry only (the test kills us there).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tests.support.history import make_record, png_bytes
from vomni_nb._history import HistoryStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("name")
    parser.add_argument("count", type=int)
    parser.add_argument("--go")
    parser.add_argument("--pause")
    parser.add_argument("--like", action="store_true")
    args = parser.parse_args()
    store = HistoryStore(args.db, fts=False if args.like else None)
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.005)
    for index in range(args.count):
        if args.pause and index == args.count - 1:
            os.environ["VOMNI_HISTORY_TEST_PAUSE"] = args.pause
        shared = index % 5 == 0
        color = (index, 0, 0) if shared else (index, sum(map(ord, args.name)) % 256, 99)
        animal = "fox" if index % 3 == 0 else "heron"
        record = make_record(prompt=f"{args.name} {index}: a {animal} in the reeds", seed=index)
        files: list[bytes | tuple[bytes, str]] = [png_bytes(color)]
        if shared:
            files.append((b"shared pcm %d" % index * 100, "pcm"))
        store.record(record, files=files)
    store.close()
    print(f"{args.name} wrote {args.count}", flush=True)


if __name__ == "__main__":
    main()
