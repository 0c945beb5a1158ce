"""Sweeps: a TOML spec expanded into jobs, run in-process, in a process pool or on Ray.

- :mod:`.spec`: parse and expand a spec into jobs with deterministic run ids;
- :mod:`.run`: decide per job (start / resume / skip) from the store, run, record the state;
- :mod:`.executors`: where jobs run (in-process, local pool, Ray cluster);
- :mod:`.progress`: the progress view, read straight from the store.

The RL job itself is :mod:`rlscale.rl.sweep_job` (imported only when a spec says ``job = "rl"``).
"""
