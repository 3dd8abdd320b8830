"""Small synthetic problems the posterior tests share."""
from __future__ import annotations

import numpy as np
import pandas as pd

#: the choices of the toy's discrete target
CHOICES = (0.0, 0.3, 1.0)


def symmetric_toy(n: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """x in [0.25, 1] ``(n, 1)`` float32; amount = 0.5 ± 0.4 x with a random sign (the sign does not reach x);
    wave = one of :data:`CHOICES`, set by x."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.25, 1.0, size=(n, 1)).astype(np.float32)
    sign = rng.choice([-1.0, 1.0], size=n)
    wave = np.asarray(CHOICES)[np.digitize(x[:, 0], [0.5, 0.75])]
    return x, pd.DataFrame({"amount": 0.5 + 0.4 * sign * x[:, 0], "wave": wave})
