"""The ``synth-probe`` command line.

Each subcommand lives in a module of :mod:`synth_probe.commands` that defines
``register(subparsers)``; this file only discovers and dispatches them, so a
command's code stays beside the feature it drives.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from synth_probe.errors import SynthProbeError
from synth_probe.fileio import describe_os_error

__all__ = ["build_parser", "main", "Parser"]

# the order in `synth-probe --help`; modules not listed come after, alphabetically
ORDER = ["synths", "params", "render", "doctor", "generate", "sensitivity", "train", "evaluate",
         "predictability", "identifiability", "tune", "match", "compare"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error of the command line.

    ``synth-probe render: error: argument --render-length: ... (see synth-probe render --help)``,
    exit status 2; subcommand parsers inherit it.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    import synth_probe.commands as commands
    from synth_probe import __version__

    parser = Parser(
        prog="synth-probe",
        description="Which synthesizer parameters show up in the sound, and how well can they be recovered?",
    )
    parser.add_argument("--version", action="version", version=f"synth-probe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        module = importlib.import_module(f"synth_probe.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors end as ``synth-probe CMD: error: ...`` on stderr with exit status 2.

    :class:`~synth_probe.errors.SynthProbeError` is what the toolkit raises on bad input. An
    ``OSError`` that reaches this level is the machine's (a full disk, a folder without
    permission, a file that vanished): it is reported the same way, with its path.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except SynthProbeError as e:
        print(f"synth-probe {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except OSError as e:
        print(f"synth-probe {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synth-probe {args.command}: interrupted; work already written is kept", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
