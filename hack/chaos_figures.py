"""Summarise the fault figures of chaos runs as a Markdown table.

    CHAOS_FIGURES=/tmp/f.txt make test-chaos   # once or several times; each line is appended
    python hack/chaos_figures.py /tmp/f.txt

Every ``figure()`` call of ``test/e2e/chaos`` appends a line ``<time> CHAOS <what>: k=v k=v ...``.
Lines with the same ``<what>`` (and the same ``k``/``round``/``victim`` when given) are one row:
each numeric value is shown as median (min-max) over the runs, other values as the set seen.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r"^\S+ CHAOS (?P<what>.+): (?P<values>\S+=.*)$")
IDENTITY = ("round", "k", "victim")  # keys that tell rows of the same fault apart


def parse(path: str) -> tuple[int, dict[str, list[dict[str, str]]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    runs = 0
    with open(path) as f:
        for line in f:
            if line.startswith("=== run ") and " start " in line:
                runs += 1
            m = LINE.match(line.strip())
            if not m:
                continue
            values = dict(kv.split("=", 1) for kv in m["values"].split() if "=" in kv)
            ident = " ".join(f"{k}={values[k]}" for k in IDENTITY if k in values)
            rows[f"{m['what']} {ident}".strip()].append(values)
    return runs, rows


def cell(values: list[str]) -> str:
    try:
        nums = [float(v) for v in values]
    except ValueError:
        return ", ".join(sorted(set(values)))
    med = statistics.median(nums)
    fmt = (lambda x: f"{x:.0f}") if all(n.is_integer() for n in nums) else (lambda x: f"{x:.1f}")
    if min(nums) == max(nums):
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(nums))}-{fmt(max(nums))})"


def main(path: str) -> int:
    runs, rows = parse(path)
    print(f"{runs} run(s); each cell: median (min-max) over the runs")
    print()
    print("| fault | n | figures |")
    print("|---|---|---|")
    for name, seen in rows.items():
        keys = [k for k in seen[0] if k not in IDENTITY]
        figures = "; ".join(f"{k} {cell([s.get(k, '') for s in seen if k in s])}" for k in keys)
        print(f"| {name} | {len(seen)} | {figures} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/chaos-figures.txt"))
