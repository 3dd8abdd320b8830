"""``synth-probe doctor PATH``: why a plugin does not load, and whether it applies parameter writes.

Checks, in order: the file (exists; Windows/macOS binary or a text file; the
architecture; a VST entry point), its shared libraries (``ldd``), the X display
(a JUCE plugin without one ends its host process), loading in a child process,
one rendered note, and finally every parameter: written away from its default,
read back through the plugin's own value text (not DawDreamer's stored value),
after a short render and after restoring the default.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

from synth_probe.commands._args import sample_rate_arg
from synth_probe.errors import PluginError

__all__ = ["register", "run", "diagnose", "classify_row"]

OK, WARN, FAIL = "ok", "warn", "FAIL"


def classify_row(row: dict[str, Any]) -> str:
    """Status of one parameter from :meth:`PluginHost.check_applied`'s row.

    ``"applied"``, ``"not applied"`` (the plugin's text did not change when the value was
    written), ``"reset while rendering"`` or ``"not restored"``.
    """
    if row["set_text"] == row["default_text"]:
        return "not applied"
    if row["after_render_text"] != row["set_text"]:
        return "reset while rendering"
    if row["restored_text"] != row["default_text"]:
        return "not restored"
    return "applied"


def diagnose(path: str, *, sample_rate: int = 44100, check_params: bool = True) -> dict[str, Any]:
    """Run every check on the plugin at ``path``.

    Returns
    -------
    report : dict
        ``checks``: list of ``{"check", "status" ("ok"/"warn"/"FAIL"), "detail"}``;
        ``params``: per-parameter rows with a ``status`` (empty if the plugin did not load);
        ``ok``: True when nothing failed.
    """
    from synth_probe.synths.plugin import (
        PluginSynth,
        check_plugin_file,
        linked_libraries,
        missing_libraries,
    )

    checks: list[dict[str, str]] = []
    report: dict[str, Any] = {"plugin": str(path), "checks": checks, "params": [], "ok": False}

    def add(name: str, status: str, detail: str) -> None:
        checks.append({"check": name, "status": status, "detail": detail})

    try:
        pf = check_plugin_file(path)
    except PluginError as e:
        add("file", FAIL, str(e))
        return report
    add("file", OK, f"{pf.format.upper()} plugin, binary {pf.binary} (64-bit ELF shared library with a VST entry point)")

    missing = missing_libraries(pf.binary)
    if missing:
        add("libraries", FAIL,
            "missing shared libraries (ldd): " + ", ".join(missing)
            + ". Install the packages that provide them (`apt-file search NAME`), or point "
              "LD_LIBRARY_PATH at a folder holding them")
        return report
    add("libraries", OK, "ldd finds every shared library")

    libs = " ".join(linked_libraries(pf.binary)).lower()
    needs_x = any(k in libs for k in ("libx11", "libxcb", "libgl.", "libglx", "libxext"))
    display = os.environ.get("DISPLAY")
    if needs_x and not display:
        add("display", WARN,
            "the plugin links X11/xcb and DISPLAY is not set; JUCE plugins end the process when they "
            "find no X server. If loading fails, run under `xvfb-run -a synth-probe doctor PATH`")
    else:
        add("display", OK, f"DISPLAY={display}" if display else "no X libraries linked; DISPLAY not needed")

    try:
        synth = PluginSynth(pf.path, isolate=True)
    except PluginError as e:
        msg = str(e)
        if not display and ("x server" in msg.lower() or "display" in msg.lower()):
            msg += "\nNo X display: run `xvfb-run -a synth-probe doctor PATH` (and the same for every command)"
        add("load", FAIL, msg)
        return report
    try:
        add("load", OK, f"loads in a child process; {len(synth.specs)} parameters exposed "
                        f"(layout: {synth.layout}); cached description {synth.sha256[:12]}…")
        try:
            audio = synth.render(note_length=0.5, render_length=1.0, sample_rate=sample_rate)
        except Exception as e:  # a render that dies is reported, not raised
            add("render", FAIL, f"rendering the default patch failed: {e}")
            return report
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if not np.all(np.isfinite(audio)):
            add("render", FAIL, "the default patch renders non-finite audio")
        elif peak < 1e-6:
            add("render", WARN, "the default patch renders silence (the plugin may need a preset or more time)")
        else:
            add("render", OK, f"the default patch renders a note, peak {20 * np.log10(peak):.1f} dBFS")
        if check_params:
            try:
                rows = synth.check_applied(sample_rate)
            except PluginError as e:
                add("parameters", FAIL, f"checking the parameters failed: {e}")
                return report
            for r in rows:
                r["status"] = classify_row(r)
            report["params"] = rows
            bad = [r for r in rows if r["status"] != "applied"]
            if bad:
                add("parameters", FAIL,
                    f"{len(bad)} of {len(rows)} parameters are not applied as written: "
                    + ", ".join(f"{r['index']} {r['name']!r} ({r['status']})" for r in bad[:12])
                    + (" …" if len(bad) > 12 else ""))
            else:
                add("parameters", OK, f"all {len(rows)} parameters are applied (checked through the plugin's value text)")
    finally:
        synth.close()
    report["ok"] = all(c["status"] != FAIL for c in checks)
    return report


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
            "parameter written is applied. Exit status 0 when all is well, 1 when problems were found."
        ),
    )
    p.add_argument("path", help="plugin file (.so) or VST3 bundle (.vst3)")
    p.add_argument("--sample-rate", type=sample_rate_arg(), default=44100, help="sample rate for the checks (default 44100)")
    p.add_argument("--no-params", action="store_true", help="skip the per-parameter check")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-parameter table, only the summary")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
