"""Pretraining-versus-RL questions, answered with numbers.

- :mod:`rlscale.analysis.passk`: does RL expand what the model can solve at all (pass@k at large
  k), or only sharpen what it already could (pass@1)? Per-difficulty verdicts with bootstrap
  intervals. :mod:`~rlscale.analysis.passk_counts` holds the count tables of several models
  (the ``--counts`` CSV) and compares each with the base; :mod:`~rlscale.analysis.passk_eval`
  makes them by sampling the models.
- :mod:`rlscale.analysis.checkpoints`: the models to compare, from run ids, base directories or
  checkpoint files.
- :mod:`rlscale.analysis.sparsity`: which parameters did RL move, and how low-rank is the update?
- :mod:`rlscale.analysis.headroom`: how does the RL ceiling A depend on pretraining, and what will
  it be at a larger pretraining budget?

The pure, table-level functions import only numpy/pandas; anything that touches torch imports it
inside the function that needs it.
"""
