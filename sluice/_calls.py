"""One place where the facade turns whatever a call raised into a `sluice.errors.Error`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sluice.errors import translate

P = ParamSpec("P")
T = TypeVar("T")


def translated(method: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            error = translate(exc)
            if error is None or error is exc:
                raise
            raise error from None

    return call
