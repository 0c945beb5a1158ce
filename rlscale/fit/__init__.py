"""Fitting engine: multi-start bounded fits of compute laws, uncertainty, FitResult, saved fits.

``rlscale.fit`` is both this package and (through ``rlscale.fit(...)``) the :func:`fit` function:
the module object is callable, so ``rlscale.fit(points, ...)`` works whether or not the package
has been imported yet.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from rlscale.fit.grouped import choose_x, fit
from rlscale.fit.laws import LAWS, Law, get_law
from rlscale.fit.result import WARNING_CODES, FitResult, FitWarning, ParamEstimate
from rlscale.fit.saved import load_fits, save_fits

__all__ = ["fit", "choose_x", "FitResult", "FitWarning", "ParamEstimate", "WARNING_CODES", "load_fits",
           "save_fits", "get_law", "Law", "LAWS"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
