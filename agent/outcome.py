"""One routed prediction: which version answered and what it said (core.py makes it, the
servicers answer with it, bookkeeping.py records it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.serving import LoadedDeployment, LoadedRoute
from agent.watch import Watch


@dataclass
class Outcome:
    """One routed prediction: which route answered and what it said."""

    deployment: LoadedDeployment
    route: LoadedRoute
    labels: np.ndarray | None
    probabilities: np.ndarray | None
    values: np.ndarray | None
    #: classifiers with string classes: each row's class (labels holds its index)
    class_labels: np.ndarray | None = None
    #: the caller's deadline and cancellation (None: nothing to watch)
    watch: Watch | None = None
