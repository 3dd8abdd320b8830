"""The ``synth-probe`` command line.

Each subcommand lives in a module of :mod:`synth_probe.commands` that defines
``register(subparsers)``; this file only discovers and dispatches them, so a
command's code stays beside the feature it drives.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from synth_probe.errors import SynthProbeError
from synth_probe.fileio import describe_os_error

__all__ = ["build_parser", "main", "Parser", "HelpFormatter"]

# the order in `synth-probe --help`; modules not listed come after, alphabetically
ORDER = ["synths", "params", "render", "doctor", "generate", "sensitivity", "train", "evaluate",
         "predictability", "identifiability", "tune", "match", "compare"]


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` that names an option's default once: ``(default: X)`` is added to its help text

    unless the text already says its default (``"seconds rendered (default 1.5)"``, ``"default: until
    --timeout"``), or there is none to show (None, an empty list, a flag's False); positional
    arguments have none. Every command's parser uses it (see :class:`Parser`).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (text == argparse.SUPPRESS or "default" in text.lower() or not action.option_strings
                or default is None or default is False or default is argparse.SUPPRESS or default == []):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error of the command line.

    ``synth-probe render: error: argument --render-length: ... (see synth-probe render --help)``,
    exit status 2; subcommand parsers inherit it.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """Parse; an argument left over is refused by the command it followed, with a hint for NAME=VALUE."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(ns, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            msg = f"unrecognized arguments: {' '.join(extras)}"
            if any("=" in e and not e.startswith("-") for e in extras):
                msg += ("; --set and --fix take one NAME=VALUE each: repeat the flag "
                        "(--set cutoff=1.5kHz --set resonance=0.2)")
            self.exit(2, f"{prog}: error: {msg} (see `{prog} --help`)\n")
        return ns

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
    _add_plugin_reset(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        module = importlib.import_module(f"synth_probe.commands.{name}")
        module.register(sub)
    for command_parser in sub.choices.values():
        _add_plugin_reset(command_parser)
    return parser


def _add_plugin_reset(parser: argparse.ArgumentParser) -> None:
    """``--plugin-reset``, accepted before the command and after it (the one place it reaches plugins)."""
    from synth_probe.synths._plugin_worker import RESET_MODES
    from synth_probe.synths.plugin import RESET_ENV

    parser.add_argument(
        "--plugin-reset", choices=RESET_MODES, default=argparse.SUPPRESS, metavar="{" + ",".join(RESET_MODES) + "}",
        help="what clears a plugin's state between renders: fork (default: each render in a copy of the "
             "freshly loaded plugin), flush (all-sound-off, the plugin's default patch, silence until quiet), "
             f"reload (a new instance each render), none (keep tails and phases, as before). Sets {RESET_ENV}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors end as ``synth-probe CMD: error: ...`` on stderr with exit status 2.

    :class:`~synth_probe.errors.SynthProbeError` is what the toolkit raises on bad input. An
    ``OSError`` that reaches this level is the machine's (a full disk, a folder without
    permission, a file that vanished): it is reported the same way, with its path.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from synth_probe.synths.plugin import RESET_ENV

    saved = os.environ.get(RESET_ENV)
    if getattr(args, "plugin_reset", None):
        os.environ[RESET_ENV] = args.plugin_reset  # child processes and every plugin created by name see it
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
    finally:
        if saved is None:
            os.environ.pop(RESET_ENV, None)
        else:
            os.environ[RESET_ENV] = saved
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
