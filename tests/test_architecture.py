"""The layering and the size limits of the package (README › Architecture).

The import contracts live in pyproject.toml ([tool.importlinter]) and are checked with the real
`lint-imports`; module and function sizes are read from the source.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synth_probe"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100
#: functions allowed to be longer, and why (the README's Architecture section repeats it)
LONG_FUNCTIONS = {
    # one ParamSpec per TAL-NoiseMaker parameter in host order: a data table, read best in one piece
    ("synth_probe/synths/noisemaker/specs.py", "_build"),
}


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_modules_and_functions_stay_within_the_limits() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and (rel, node.name) not in LONG_FUNCTIONS:
                    too_long.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, too_long



def test_every_module_has_a_place_in_the_layers() -> None:
    """A new top-level module or package must be placed in the layers contract, or its imports go unchecked."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in config if c["type"] == "layers")
    placed = {name.strip() for layer in layers for name in layer.split(":")}
    here = {f"synth_probe.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert not here - placed, f"not in the layers of pyproject.toml: {sorted(here - placed)}"
