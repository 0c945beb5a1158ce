"""The run store: one directory per run (``run.json`` + ``points.parquet``), written whole or not at all.

- :mod:`.schema`: the points schema, the compute axes, run ids, :class:`RunMeta` (run.json);
- :mod:`.layout`: every path under a store (runs, ``_fits``, ``_ckpt``, ``_sweeps``, temp names);
- :mod:`.atomic`: writes via a temporary name, fsync and rename;
- :mod:`.runs`: :class:`Store`, :class:`RunWriter`, :func:`load_points`, :func:`load_runs`.

The public names are re-exported here (``from rlscale.store import Store``); see docs/store.md.
"""

from rlscale.store.runs import (RunWriter, Store, WriteStatus, as_store, load_metric_points,
                                load_points, load_runs, same_source)
from rlscale.store.schema import (COMPUTE_AXES, POINT_COLUMNS, POINTS_SCHEMA, SCHEMA_VERSION, X_AXES,
                                  RunMeta, check_run_id, normalize_points)

__all__ = ["COMPUTE_AXES", "POINT_COLUMNS", "POINTS_SCHEMA", "SCHEMA_VERSION", "X_AXES", "RunMeta",
           "RunWriter", "Store", "WriteStatus", "as_store", "check_run_id", "load_metric_points", "load_points",
           "load_runs", "normalize_points", "same_source"]
