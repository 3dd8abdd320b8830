"""Subcommands of ``synth-probe``: one module each, each with ``register(subparsers)``."""
