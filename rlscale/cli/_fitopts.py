"""The fit options, defined once and shared by every command that fits before it answers.

``rlscale fit``, ``forecast``, ``backtest``, ``plot``, ``report`` and ``headroom`` take the same
``--metric``, ``--x``, ``--by``, ``--law``, ... options: :func:`fit_options` applies them as one
decorator (the way sqlite-utils shares option groups), so help text, defaults and choices
cannot drift apart. :func:`fit_kwargs` turns the parsed values into :func:`rlscale.fit.fit`
keyword arguments.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import click

from rlscale.cli._common import STRICT_HELP, set_strict, store_path
from rlscale.errors import InputError
from rlscale.fit.grouped import choose_x, parse_r0
from rlscale.store import X_AXES, load_metric_points


class R0Type(click.ParamType):
    """``--r0``: parsed by the fit's own :func:`rlscale.fit.grouped.parse_r0`, the one parser."""

    name = "text"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return parse_r0(value)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


# (name, param_decls, click.option keywords), in the order `--help` lists them
FIT_OPTIONS: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("metric", ("--metric",), dict(required=True, help="Metric to fit (e.g. reward, pass@1).")),
    ("x", ("--x", "x"), dict(type=click.Choice(X_AXES), default=None,
                             help="Compute axis: a points column; 'step' uses the training step. "
                                  "Default: the first of gpu_hours, flops, tokens, step that the "
                                  "runs have.")),
    ("by", ("--by",), dict(default="recipe", show_default=True,
                           help="Pool runs into one fit per group: recipe, run_id, or metadata "
                                "KEY[,KEY...]. Runs without a recipe are fitted one by one.")),
    ("law", ("--law",), dict(default="sigmoid", show_default=True,
                             help="Law to fit: sigmoid, power, exp, loglinear, or 'all' to fit "
                                  "and rank them.")),
    ("burn_in", ("--burn-in",), dict(type=float, default=None,
                                     help="Drop points below this compute (ScaleRL drops the "
                                          "first ~1.5k GPU-hours).")),
    ("max_x", ("--max-x",), dict(type=float, default=None,
                                 help="Fit only points up to this compute (extrapolation, "
                                      "backtests).")),
    ("r0", ("--r0",), dict(type=R0Type(), default="fit", show_default=True,
                           help="R0: 'fit' (free), 'first' (fixed at the runs' first value) or a "
                                "number.")),
    ("loss", ("--loss",), dict(type=click.Choice(["linear", "huber"]), default="linear",
                               show_default=True,
                               help="Least squares, or Huber loss against outlier points.")),
    ("bootstrap", ("--bootstrap",), dict(type=click.IntRange(min=0), default=0, show_default=True,
                                         help="Number of bootstrap refits for intervals (0: Wald "
                                              "intervals, AR(1)-widened).")),
    ("interval", ("--interval",), dict(type=click.Choice(["wald", "profile"]), default="wald",
                                       show_default=True,
                                       help="Interval without --bootstrap: Wald (AR(1)-widened; "
                                            "fast) or profile likelihood (slower; honest when A "
                                            "is weakly identified).")),
    ("resample", ("--resample",), dict(type=click.Choice(["points", "runs"]), default="points",
                                       show_default=True,
                                       help="Bootstrap unit: points (block bootstrap if residuals "
                                            "are autocorrelated) or whole runs (seeds).")),
    ("method", ("--method",), dict(type=click.Choice(["lmfit", "scalerl-grid"]), default="lmfit",
                                   show_default=True,
                                   help="lmfit multi-start fit, or the ScaleRL paper's grid "
                                        "search.")),
    ("level", ("--level",), dict(type=click.FloatRange(0, 1, min_open=True, max_open=True),
                                 default=0.95, show_default=True, help="Interval coverage.")),
    ("seed", ("--seed",), dict(type=int, default=0, show_default=True,
                               help="Seed for resampling.")),
    ("drop_nan", ("--drop-nan",), dict(is_flag=True,
                                       help="Drop non-finite values instead of failing.")),
    ("strict", ("--strict",), dict(is_flag=True, expose_value=False,
                                   callback=set_strict,
                                   help=STRICT_HELP)),
]



def fit_options(*, only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                defaults: dict[str, Any] | None = None, helps: dict[str, str] | None = None
                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding the fit options (``only`` these, minus ``exclude``) to a click command,
    in help order.

    ``defaults`` overrides the default of some of them (e.g. ``{"level": 0.9}``), ``helps`` their
    help text where a command uses them in its own sense (``headroom`` fits per pretraining level).
    """
    names = [name for name, _, _ in FIT_OPTIONS]
    keep = set(names if only is None else only) - set(exclude)
    defaults, helps = defaults or {}, helps or {}
    unknown = (keep | set(exclude) | set(defaults) | set(helps)) - set(names)
    if unknown:
        msg = f"no fit options {sorted(unknown)}"
        raise ValueError(msg)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name, decls, kw in reversed(FIT_OPTIONS):  # click applies decorators bottom-up
            if name in keep:
                own = {"default": defaults[name]} if name in defaults else {}
                own.update({"help": helps[name]} if name in helps else {})
                func = click.option(*decls, **{**kw, **own})(func)
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


def resolve_x(points: Any, metric: str, x: str | None) -> str:
    """``--x`` as given, or (left out) the first of gpu_hours, flops, tokens, step the runs have."""
    return choose_x(points, metric, x)


def load_store_points(store: str | None, metric: str) -> Any:
    """Points (with run metadata) of ``metric`` from the store; a metric it lacks is a usage error."""
    try:
        return load_metric_points(store_path(store), metric)
    except InputError as exc:
        if exc.field != "metric":
            raise
        raise click.BadParameter(str(exc), param_hint="--metric") from None


def select_recipe(points: Any, recipe: str | None) -> Any:
    """Only the runs of ``recipe`` (all of them when None); a recipe with no runs is a usage
    error that lists the recipes there are."""
    if recipe is None:
        return points
    recipes = sorted(points["recipe"].dropna().unique()) if "recipe" in points else []
    points = points[points["recipe"] == recipe] if "recipe" in points else points.iloc[:0]
    if points.empty:
        raise click.BadParameter(f"no runs of recipe {recipe!r}; recipes: {recipes}",
                                 param_hint="--recipe")
    return points
