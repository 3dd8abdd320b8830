"""Why a plugin does not load, and whether it applies parameter writes (``synth-probe doctor``).

Checks, in order: the file (exists; Windows/macOS binary or a text file; the
architecture; a VST entry point), its shared libraries (``ldd``), the X display
(a JUCE plugin without one ends its host process), loading in a child process,
one rendered note, and finally every parameter: written away from its default,
read back through the plugin's own value text (not DawDreamer's stored value),
after a short render and after restoring the default. A parameter whose text
goes back to its default by itself after the render is a momentary button: a
note, not a failure.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from synth_probe.errors import PluginError

__all__ = ["diagnose", "classify_row", "OK", "WARN", "FAIL", "NOTE"]

OK, WARN, FAIL, NOTE = "ok", "warn", "FAIL", "note"


def classify_row(row: dict[str, Any]) -> str:
    """Status of one parameter from :meth:`PluginHost.check_applied`'s row.

    ``"applied"``; ``"momentary"`` (the plugin's text changed when the value was written
    and showed the default again after a short render: a button that puts itself back,
    such as TAL-NoiseMaker's envelope reset; not a failure); ``"not applied"`` (the text
    did not change when the value was written — a button that puts itself back inside
    the write itself cannot be told from this); ``"reset while rendering"`` (the text
    changed again while rendering, to something other than the default) or ``"not
    restored"``.
    """
    if row["set_text"] == row["default_text"]:
        return "not applied"
    if row["after_render_text"] == row["default_text"]:
        return "momentary"
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
        ``checks``: list of ``{"check", "status" ("ok"/"warn"/"note"/"FAIL"), "detail"}``;
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
            _add_param_checks(rows, add)
            report["params"] = rows
    finally:
        synth.close()
    report["ok"] = all(c["status"] != FAIL for c in checks)
    return report


def _add_param_checks(rows: list[dict[str, Any]], add: Any) -> None:
    """Classify ``rows`` in place and add the ``parameters`` check (and a ``momentary`` note)."""
    for r in rows:
        r["status"] = classify_row(r)
    bad = [r for r in rows if r["status"] not in ("applied", "momentary")]
    momentary = [r for r in rows if r["status"] == "momentary"]

    def listing(rs: list[dict[str, Any]]) -> str:
        return ", ".join(f"{r['index']} {r['name']!r}" for r in rs[:12]) + (" …" if len(rs) > 12 else "")

    if bad:
        add("parameters", FAIL,
            f"{len(bad)} of {len(rows)} parameters are not applied as written: "
            + ", ".join(f"{r['index']} {r['name']!r} ({r['status']})" for r in bad[:12])
            + (" …" if len(bad) > 12 else ""))
    else:
        add("parameters", OK, f"all {len(rows)} parameters are applied (checked through the plugin's value text)"
            + (f", {len(momentary)} of them momentary" if momentary else ""))
    if momentary:
        add("momentary", NOTE,
            f"{len(momentary)} parameter(s) put themselves back to their default after a write (momentary "
            f"buttons, e.g. an envelope reset): {listing(momentary)}. Not a failure; a patch value there acts "
            "once when written")
