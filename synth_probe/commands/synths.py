"""``synth-probe synths``: the built-in synths and the plugins found in the standard folders."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run", "list_synths"]


def list_synths(dirs: list[Path] | None = None, *, check: bool = False) -> list[dict[str, Any]]:
    """Built-in synths, then plugins in ``dirs`` (default: the standard Linux plugin folders).

    Parameters
    ----------
    dirs : list of Path, optional
        Folders to search instead of :func:`synth_probe.synths.plugin.plugin_search_dirs`.
    check : bool
        Load each plugin (in a child process) and report its parameter count or its error.

    Returns
    -------
    rows : list of dict
        ``name``, ``kind`` ("builtin", "vst2", "vst3"), ``path`` and ``info``.
    """
    from synth_probe.errors import PluginError
    from synth_probe.synths.plugin import PluginSynth, check_plugin_file, find_plugins
    from synth_probe.synths.registry import BUILTIN_SYNTHS

    rows: list[dict[str, Any]] = [
        {"name": name, "kind": "builtin", "path": "", "info": desc} for name, desc in BUILTIN_SYNTHS.items()
    ]
    for fmt, path in find_plugins(dirs):
        info = ""
        try:
            check_plugin_file(path)
        except PluginError as e:
            info = f"not loadable: {str(e).splitlines()[0]}"
        else:
            if check:
                try:
                    with PluginSynth(path) as s:
                        info = f"{len(s.specs)} parameters (layout {s.layout})"
                except PluginError as e:
                    info = f"does not load: {str(e).splitlines()[0]}"
        rows.append({"name": path.name.rsplit(".", 1)[0], "kind": fmt, "path": str(path), "info": info})
    return rows


def run(args: argparse.Namespace) -> int:
    from synth_probe.synths.plugin import plugin_search_dirs

    from synth_probe.errors import PluginError

    dirs = [Path(d) for d in args.dir] if args.dir else None
    for d in dirs or []:
        if not d.is_dir():
            raise PluginError(f"--dir {str(d)!r} is not a folder; give a folder that holds plugins")
    rows = list_synths(dirs, check=args.check)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print("Built-in synths:")
    for r in rows:
        if r["kind"] == "builtin":
            print(f"  {r['name']:<20} {r['info']}")
    plugins = [r for r in rows if r["kind"] != "builtin"]
    searched = dirs if dirs is not None else plugin_search_dirs()
    print(f"\nPlugins ({len(plugins)} found in {', '.join(str(d) for d in searched)}):")
    for r in plugins:
        extra = f"  {r['info']}" if r["info"] else ""
        print(f"  {r['name']:<20} {r['kind'].upper():<5} {r['path']}{extra}")
    if not plugins:
        print("  none")
    print("\nUse a built-in synth's name or a plugin's path wherever a command takes SYNTH.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synths",
        help="list the built-in synths and the VST2/VST3 plugins found in the standard folders",
        description=(
            "List the built-in synths and the plugins in ~/.vst, ~/.vst3, /usr/lib/vst, /usr/lib/vst3, "
            "/usr/local/lib/vst, /usr/local/lib/vst3 and the folders in LXVST_PATH, VST_PATH and VST3_PATH."
        ),
    )
    p.add_argument("--dir", action="append", default=[], metavar="DIR",
                   help="search this folder instead of the standard ones (repeatable)")
    p.add_argument("--check", action="store_true", help="load each plugin in a child process and count its parameters")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)
