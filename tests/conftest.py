from __future__ import annotations

import os
import shutil
from pathlib import Path

# scikit-learn's estimator checks include array-API input checks that skip unless SciPy's array API
# mode is on before SciPy is first imported; on, they run (and pass), so nothing is skipped
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402

#: what some tests need from the system: tool -> (file or command, Debian package)
SYSTEM_TOOLS: dict[str, tuple[str, str]] = {
    "amsynth": ("/usr/lib/vst/amsynth_vst.so", "amsynth"),
    "chromium": ("/usr/bin/chromium", "chromium"),
    "gcc": ("gcc", "gcc"),
    "xvfb-run": ("xvfb-run", "xvfb xauth"),
}
#: set by `make test` when every package is installed: a missing tool is then a failure, not a skip
REQUIRED_ENV = "SYNTH_PROBE_SYSTEM_TESTS"


def system_tool_missing(tool: str) -> str | None:
    """None when ``tool`` of :data:`SYSTEM_TOOLS` is there, else a line naming its package and how to install it."""
    where, package = SYSTEM_TOOLS[tool]
    found = Path(where).is_file() and os.access(where, os.R_OK) if where.startswith("/") else shutil.which(where)
    if found:
        return None
    return (f"needs {tool} ({where}) from the Debian package {package}: "
            f"sudo apt-get install {package}, or run `make test` as root, which installs it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*tools): system tools the test needs (see SYSTEM_TOOLS in conftest.py)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        for tool in mark.args:
            why = system_tool_missing(tool)
            if why is None:
                continue
            if os.environ.get(REQUIRED_ENV) == "required":
                pytest.fail(f"{why} ({REQUIRED_ENV}=required: the packages were installed, so nothing may skip)")
            pytest.skip(why)


@pytest.fixture(scope="session")
def noisemaker():
    """One emulation instance (and so one compiled engine) for the whole session."""
    from synth_probe.synths.noisemaker import NoiseMaker

    synth = NoiseMaker()
    yield synth
    synth.close()
