"""The run store: one directory per run (``run.json`` + ``points.parquet``), written whole or not at all.

- :mod:`.schema`: the points schema, the compute axes, run ids, :class:`RunMeta` (run.json);
- :mod:`.layout`: every path under a store (runs, ``_fits``, ``_ckpt``, ``_sweeps``, temp names);
- :mod:`.atomic`: writes via a temporary name, fsync and rename;
- :mod:`.runs`: :class:`Store` (pyarrow only: listing a store needs no pandas);
- :mod:`.validate`: points checked and coerced to the schema;
- :mod:`.frames`: the pandas side: :class:`RunWriter`, :func:`load_points`, :func:`load_runs`.

The public names are re-exported here (``from rlscale.store import Store``) and imported on
first use; see docs/store.md.
"""

from __future__ import annotations

from rlscale import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["AUTO_X_ORDER", "COMPUTE_AXES", "POINT_COLUMNS", "POINTS_SCHEMA", "SCHEMA_VERSION", "X_AXES",
                     "RunMeta", "check_run_id"], "rlscale.store.schema"),
    **dict.fromkeys(["Store", "WriteStatus", "as_store", "same_source"], "rlscale.store.runs"),
    "normalize_points": "rlscale.store.validate",
    **dict.fromkeys(["RunWriter", "load_metric_points", "load_points", "load_runs"],
                    "rlscale.store.frames"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
