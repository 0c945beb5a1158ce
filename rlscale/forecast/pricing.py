"""Compute-unit conversions: FLOPs <-> GPU-hours at a stated throughput, GPU-hours <-> dollars.

A FLOP count says nothing about cost until a throughput is stated: either directly as FLOPs per
GPU-hour, or as a GPU's peak FLOP/s times the model FLOPs utilisation (MFU) a job achieves. Every
function here is pure and works on floats or numpy arrays (``inf`` stays ``inf``);
:func:`add_costs` puts the conversions beside a forecast table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlscale.errors import InputError

SECONDS_PER_HOUR = 3600.0
# The compute axes a dollar figure can be derived from (tokens and wall seconds carry no GPU count).
PRICEABLE_AXES: tuple[str, ...] = ("gpu_hours", "flops")
# The compute columns of a forecast table that get cost columns beside them.
X_COLUMNS: tuple[str, ...] = ("x", "x_lower", "x_upper")


def flops_per_gpu_hour(*, peak_flops: float, mfu: float) -> float:
    """Throughput in FLOPs per GPU-hour from peak FLOP/s (per GPU) and MFU in (0, 1]."""
    if not (peak_flops > 0 and np.isfinite(peak_flops)):
        msg = f"peak FLOP/s must be a positive number (e.g. 9.89e14 for an H100 in bf16), got {peak_flops!r}"
        raise InputError(msg)
    if not 0 < mfu <= 1:
        msg = f"MFU must be a fraction in (0, 1] (e.g. 0.4), got {mfu!r}"
        raise InputError(msg)
    return float(peak_flops) * float(mfu) * SECONDS_PER_HOUR


def flops_to_gpu_hours(flops: np.ndarray | float, *, flops_per_gpu_hour: float) -> np.ndarray:
    """GPU-hours that ``flops`` take at ``flops_per_gpu_hour``."""
    _check_positive("FLOPs per GPU-hour", flops_per_gpu_hour)
    return np.asarray(flops, dtype=float) / flops_per_gpu_hour


def gpu_hours_to_flops(gpu_hours: np.ndarray | float, *, flops_per_gpu_hour: float) -> np.ndarray:
    """FLOPs done in ``gpu_hours`` at ``flops_per_gpu_hour``."""
    _check_positive("FLOPs per GPU-hour", flops_per_gpu_hour)
    return np.asarray(gpu_hours, dtype=float) * flops_per_gpu_hour


@dataclass(frozen=True)
class Pricing:
    """How to read compute on axis ``axis`` as GPU-hours and dollars.

    ``flops_per_gpu_hour`` is needed only when ``axis == "flops"``; ``usd_per_gpu_hour`` only for
    dollar figures. Build it with :meth:`create` to get the checks.
    """

    axis: str
    usd_per_gpu_hour: float | None = None
    flops_per_gpu_hour: float | None = None

    @classmethod
    def create(cls, *, axis: str, usd_per_gpu_hour: float | None = None,
               flops_per_gpu_hour: float | None = None, peak_flops: float | None = None,
               mfu: float | None = None) -> Pricing:
        """Check and combine the stated rates; ``peak_flops`` x ``mfu`` stands for ``flops_per_gpu_hour``."""
        if (peak_flops is None) != (mfu is None):
            msg = "give both --peak-flops and --mfu (throughput = peak x MFU), or neither"
            raise InputError(msg)
        if peak_flops is not None:
            if flops_per_gpu_hour is not None:
                msg = "give either --flops-per-gpu-hour or --peak-flops with --mfu, not both"
                raise InputError(msg)
            flops_per_gpu_hour = flops_per_gpu_hour_from(peak_flops, mfu)  # type: ignore[arg-type]
        if flops_per_gpu_hour is not None:
            _check_positive("FLOPs per GPU-hour", flops_per_gpu_hour)
        if usd_per_gpu_hour is not None:
            _check_positive("dollars per GPU-hour", usd_per_gpu_hour)
        pricing = cls(axis=axis, usd_per_gpu_hour=usd_per_gpu_hour,
                      flops_per_gpu_hour=flops_per_gpu_hour)
        if usd_per_gpu_hour is not None:
            pricing._require_gpu_hours()
        return pricing

    @property
    def active(self) -> bool:
        """True when there is anything to convert (a dollar rate, or a FLOP axis with a throughput)."""
        return self.usd_per_gpu_hour is not None or (
            self.axis == "flops" and self.flops_per_gpu_hour is not None)

    def _require_gpu_hours(self) -> None:
        if self.axis == "gpu_hours":
            return
        if self.axis == "flops":
            if self.flops_per_gpu_hour is None:
                msg = ("compute axis is 'flops': state a throughput with --flops-per-gpu-hour, "
                       "or --peak-flops and --mfu, to convert FLOPs to GPU-hours and dollars")
                raise InputError(msg)
            return
        msg = (f"cannot convert compute axis {self.axis!r} to GPU-hours or dollars; "
               f"use --x with one of {list(PRICEABLE_AXES)}")
        raise InputError(msg)

    def gpu_hours(self, x: np.ndarray | float) -> np.ndarray:
        """Compute ``x`` (on :attr:`axis`) as GPU-hours."""
        self._require_gpu_hours()
        if self.axis == "gpu_hours":
            return np.asarray(x, dtype=float)
        return flops_to_gpu_hours(x, flops_per_gpu_hour=self.flops_per_gpu_hour)  # type: ignore[arg-type]

    def usd(self, x: np.ndarray | float) -> np.ndarray:
        """Compute ``x`` (on :attr:`axis`) in dollars."""
        if self.usd_per_gpu_hour is None:
            msg = "no dollar rate: pass --usd-per-gpu-hour"
            raise InputError(msg)
        return self.gpu_hours(x) * self.usd_per_gpu_hour

    def x_from_usd(self, usd: np.ndarray | float) -> np.ndarray:
        """The compute on :attr:`axis` that ``usd`` dollars buy."""
        if self.usd_per_gpu_hour is None:
            msg = "budgets in dollars need a rate: pass --usd-per-gpu-hour"
            raise InputError(msg)
        self._require_gpu_hours()
        gh = np.asarray(usd, dtype=float) / self.usd_per_gpu_hour
        if self.axis == "gpu_hours":
            return gh
        return gpu_hours_to_flops(gh, flops_per_gpu_hour=self.flops_per_gpu_hour)  # type: ignore[arg-type]


def stated_pricing(*, axis: str, usd_per_gpu_hour: float | None = None,
                   flops_per_gpu_hour: float | None = None, peak_flops: float | None = None,
                   mfu: float | None = None, required: bool = False) -> Pricing | None:
    """The :class:`Pricing` of the stated rates (checked by :meth:`Pricing.create`), or ``None``.

    ``None`` when no rate is stated and ``required`` is false. ``required=True`` (budgets given
    in dollars) always builds one, so that converting says which rate is missing.
    """
    stated = any(v is not None for v in (usd_per_gpu_hour, flops_per_gpu_hour, peak_flops, mfu))
    if not (stated or required):
        return None
    return Pricing.create(axis=axis, usd_per_gpu_hour=usd_per_gpu_hour,
                          flops_per_gpu_hour=flops_per_gpu_hour, peak_flops=peak_flops, mfu=mfu)


def add_costs(df: pd.DataFrame, pricing: Pricing | None) -> pd.DataFrame:
    """Add ``gpu_hours*`` (FLOP axis with a throughput) and ``usd*`` columns for every x column."""
    if pricing is None or not pricing.active or df.empty:
        return df
    out = df.copy()
    for col in (c for c in X_COLUMNS if c in out.columns):
        suffix = col[1:]  # "", "_lower", "_upper"
        values = out[col].to_numpy(dtype=float)
        if pricing.axis == "flops" and pricing.flops_per_gpu_hour is not None:
            out[f"gpu_hours{suffix}"] = pricing.gpu_hours(values)
        if pricing.usd_per_gpu_hour is not None:
            out[f"usd{suffix}"] = pricing.usd(values)
    return out


def flops_per_gpu_hour_from(peak_flops: float, mfu: float) -> float:
    """Positional alias of :func:`flops_per_gpu_hour` for internal use."""
    return flops_per_gpu_hour(peak_flops=peak_flops, mfu=mfu)


def _check_positive(what: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and np.isfinite(value)):
        msg = f"{what} must be a positive finite number, got {value!r}"
        raise InputError(msg)
