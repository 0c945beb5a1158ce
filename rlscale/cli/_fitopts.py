"""The ``rlscale fit`` options, reused by commands that fit before they answer (forecast, backtest).

The option list is defined once, on the ``fit`` command; this module copies those click
parameters onto another command, so help text, defaults and choices can never drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import click

from rlscale.cli._common import store_path
from rlscale.errors import StoreError
from rlscale.store.runs import Store, load_points

# fit options that only make sense for `rlscale fit` itself
NOT_REUSED = ("store", "save", "as_json")


def fit_options(*, exclude: Iterable[str] = (), defaults: dict[str, Any] | None = None
                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding the ``rlscale fit`` options (minus ``exclude``) to a click command.

    ``defaults`` overrides the default of some of them (e.g. ``{"level": 0.9}``). The options
    appear in the same order as in ``rlscale fit --help``, where the decorator is placed.
    """
    from rlscale.cli.fit import fit_command  # not at the top: rlscale.cli.fit imports this module

    skip = set(NOT_REUSED) | set(exclude)
    defaults = defaults or {}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params = getattr(func, "__click_params__", [])
        # click collects decorator params bottom-up and reverses them: append in reverse order
        for param in reversed(fit_command.params):
            if param.name in skip:
                continue
            clone = copy.copy(param)
            if param.name in defaults:
                clone.default = defaults[param.name]
            params.append(clone)
        func.__click_params__ = params  # type: ignore[attr-defined]
        return func

    return decorate


def fit_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """Map the parsed fit options to :func:`rlscale.fit.fit` keyword arguments."""
    by = [b.strip() for b in str(options["by"]).split(",") if b.strip()]
    law = options["law"]
    if law == "all":
        raise click.BadParameter("forecasts need one law; fit --law all to compare them first",
                                 param_hint="--law")
    out = {"x": options["x"], "by": by, "law": law, "burn_in": options["burn_in"],
           "r0": options["r0"], "loss": options["loss"], "bootstrap": options["bootstrap"],
           "resample": options["resample"], "method": options["method"],
           "level": options["level"], "seed": options["seed"],
           "nan": "drop" if options.get("drop_nan") else "error"}
    for optional in ("max_x", "interval"):
        if optional in options:
            out[optional] = options[optional]
    return out


def load_store_points(store: str | None, metric: str) -> Any:
    """Points (with run metadata) of ``metric`` from the store, or a clear error."""
    root = store_path(store)
    st = Store(root)
    if not st.run_ids():
        msg = f"no runs in store {str(root)!r} (pass --store DIR or set RLSCALE_STORE)"
        raise StoreError(msg)
    points = load_points(st, metric=metric, with_meta=True)
    if points.empty:
        known = sorted({m for ms in st.runs()["metrics"] for m in ms})
        raise click.BadParameter(f"no points for metric {metric!r} in {str(root)!r}; "
                                 f"metrics there: {known}", param_hint="--metric")
    return points
