"""``synth-probe params SYNTH``: the parameters of a synth, as a table, CSV or JSON."""
from __future__ import annotations

import argparse
import csv
import json
import sys

__all__ = ["register", "param_rows"]


def param_rows(synth) -> list[dict]:
    """One dict per parameter: index, name, kind, default (unit and display), group, range, inert, note."""
    rows = []
    for s in synth.specs:
        rows.append(
            {
                "index": s.index,
                "name": s.name,
                "kind": s.kind,
                "default": round(float(s.default), 6),
                "default_display": s.display(s.default),
                "group": s.group,
                "range": s.physical_range(),
                "inert": s.inert,
                "note": s.note,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    from synth_probe.synths import get_synth

    with get_synth(args.synth) as synth:
        rows = param_rows(synth)
    out = sys.stdout
    if args.format == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
    elif args.format == "csv":
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        cols = ["index", "name", "kind", "default", "default_display", "group", "range"]
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
        widths["range"] = min(widths["range"], 60)
        out.write("  ".join(c.ljust(widths[c]) for c in cols) + "\n")
        for r in rows:
            cells = [str(r[c]) for c in cols]
            if len(cells[-1]) > 60:
                cells[-1] = cells[-1][:57] + "..."
            line = "  ".join(v.ljust(widths[c]) for v, c in zip(cells, cols))
            out.write(line.rstrip() + ("  (inert)" if r["inert"] else "") + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="list a synth's parameters (index, name, kind, default, range)")
    p.add_argument("synth", metavar="SYNTH", help="'noisemaker' or a plugin path")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=run)
