"""``synth-probe doctor PATH``: why a plugin does not load, and whether it applies parameter writes.

The checks live in :mod:`synth_probe.synths.plugin_doctor`; this module parses the
arguments and prints the report.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from synth_probe.commands._args import sample_rate_arg
from synth_probe.synths.plugin_doctor import classify_row, diagnose

__all__ = ["register", "run", "diagnose", "classify_row"]


def _print_report(report: dict[str, Any], verbose_params: bool) -> None:
    print(f"doctor: {report['plugin']}")
    for c in report["checks"]:
        lines = c["detail"].splitlines() or [""]
        print(f"  [{c['status']:>4}] {c['check']:<10} {lines[0]}")
        for ln in lines[1:]:
            print(f"  {'':>6} {'':<10} {ln}")
    rows = report["params"]
    if rows and verbose_params:
        print()
        print(f"  {'idx':>4}  {'name':<24} {'default':>10} -> {'written':>10}  {'after render':>12}  status")
        for r in rows:
            print(f"  {r['index']:>4}  {r['name'][:24]:<24} {r['default_text'][:10]:>10} -> "
                  f"{r['set_text'][:10]:>10}  {r['after_render_text'][:12]:>12}  {r['status']}")
    print()
    print("result: " + ("plugin OK" if report["ok"] else "problems found"))


def run(args: argparse.Namespace) -> int:
    report = diagnose(args.path, sample_rate=args.sample_rate, check_params=not args.no_params)
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        _print_report(report, verbose_params=not args.quiet)
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="say why a plugin does not load, and check that it applies every parameter",
        description=(
            "Diagnose a VST2/VST3 plugin: Windows/macOS binaries, missing shared libraries (ldd), "
            "a missing X display (suggests xvfb-run -a), non-plugins; then load it in a child "
            "process, render a note and check through the plugin's own value text that every "
            "parameter written is applied; a parameter that puts itself back to its default after a write "
            "(a momentary button) is reported as a note. Exit status 0 when all is well (notes included), "
            "1 when problems were found."
        ),
    )
    p.add_argument("path", help="plugin file (.so) or VST3 bundle (.vst3)")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=44100, help="sample rate for the checks (default 44100)")
    p.add_argument("--no-params", action="store_true", help="skip the per-parameter check")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-parameter table, only the summary")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
