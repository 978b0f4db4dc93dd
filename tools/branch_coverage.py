"""Branch coverage alone (coverage.py's own total mixes lines and branches), from the data `make coverage` left.

    .venv/bin/python tools/branch_coverage.py [--fail-under 90]

Reads ``.coverage`` with the settings in pyproject.toml (so ``vomni_nb/sim/`` is left out, as there),
prints the files with the most missed branches and the total, and exits 1 under ``--fail-under``.
"""

from __future__ import annotations

import argparse
import sys

import coverage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fail-under", type=float, default=0.0)
    parser.add_argument("--data-file", default=".coverage")
    args = parser.parse_args()
    cov = coverage.Coverage(data_file=args.data_file)
    cov.load()
    rows: list[tuple[int, int, str]] = []
    for path in cov.get_data().measured_files():
        if "/vomni_nb/" not in path or "/vomni_nb/sim/" in path:
            continue
        numbers = cov._analyze(path).numbers  # coverage.py's per-file figures (its report uses the same)
        rows.append((numbers.n_missing_branches, numbers.n_branches, path.split("/vomni_nb/", 1)[1]))
    total = sum(branches for _, branches, _ in rows)
    missed = sum(missing for missing, _, _ in rows)
    for missing, branches, name in sorted(rows, reverse=True)[:10]:
        print(f"  {name:32s} {missing:4d} of {branches:4d} branches missed")
    if not total:  # no data (a run that was stopped, or measured nothing): not a pass
        print(f"no branch data for vomni_nb/ outside sim/ in {args.data_file}", file=sys.stderr)
        return 1
    percent = 100.0 * (total - missed) / total
    print(f"branch coverage of vomni_nb/ outside sim/: {percent:.2f}% ({total - missed} of {total} branches)")
    return 1 if percent < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
