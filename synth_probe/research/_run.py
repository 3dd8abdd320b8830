"""What the research scripts share: the finished predictability run they compare with."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.predictability import load_run_dataset, load_saved_run

__all__ = ["open_saved_run"]


def open_saved_run(reports: str) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str], Any] | None:
    """The predictability run in ``reports``: ``(results, saved predictions, ensemble members, dataset)``.

    None, after printing the error on stderr, when the run or its dataset cannot be read.
    """
    try:
        results, saved, members = load_saved_run(reports)
        return results, saved, members, load_run_dataset(results)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
