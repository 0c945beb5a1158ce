"""The run store: one directory per run (``run.json`` + ``points.parquet``), written whole or not at all.

See docs/store.md. The public names are re-exported here: ``from rlscale.store import Store``.
"""

from rlscale.store.runs import (COMPUTE_AXES, POINTS_SCHEMA, RunMeta, RunWriter, Store, load_points,
                                load_runs)

__all__ = ["COMPUTE_AXES", "POINTS_SCHEMA", "RunMeta", "RunWriter", "Store", "load_points",
           "load_runs"]
