#!/usr/bin/env python3
"""Line coverage floors: reads `cargo llvm-cov report --json --summary-only` on stdin, prints the
line coverage of the workspace and of each crate, and exits 1 when the workspace or
crates/domain is under its floor.
    cargo llvm-cov report --json --summary-only | scripts/coverage-floor.py [WORKSPACE DOMAIN]
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

root = Path(__file__).resolve().parent.parent
floors = {"workspace": 85.0, "crates/domain": 95.0}
if len(sys.argv) == 3:
    floors = {"workspace": float(sys.argv[1]), "crates/domain": float(sys.argv[2])}

report = json.load(sys.stdin)["data"][0]
by_crate = defaultdict(lambda: [0, 0])
for entry in report["files"]:
    path = Path(entry["filename"])
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        continue
    lines = entry["summary"]["lines"]
    crate = "/".join(parts[:2])
    by_crate[crate][0] += lines["covered"]
    by_crate[crate][1] += lines["count"]

def percent(covered, count):
    return 100.0 * covered / count if count else 0.0

totals = report["totals"]["lines"]
measured = {"workspace": percent(totals["covered"], totals["count"])}
print("line coverage")
for crate, (covered, count) in sorted(by_crate.items()):
    print(f"  {crate:<22} {percent(covered, count):6.2f} %  ({covered}/{count} lines)")
    if crate in floors:
        measured[crate] = percent(covered, count)
print(f"  {'workspace':<22} {measured['workspace']:6.2f} %  ({totals['covered']}/{totals['count']} lines)")

failed = False
for name, floor in floors.items():
    value = measured.get(name)
    if value is None or value < floor:
        failed = True
        print(f"coverage FAILED: {name} lines {0 if value is None else value:.2f} % < floor {floor:.0f} %")
    else:
        print(f"coverage ok: {name} lines {value:.2f} % >= floor {floor:.0f} %")
sys.exit(1 if failed else 0)
