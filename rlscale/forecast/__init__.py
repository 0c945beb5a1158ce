"""Forecasts from fitted laws (stage 4 of the data flow: store -> fit -> forecast -> plot).

- :mod:`.curve`: a forecaster's view of a FitResult (law, point estimate, joint draws);
- :mod:`.roots`: vectorised inverses, crossings and intervals over draws (plain numpy);
- :mod:`.budgets`: reward at a budget, compute for a reward or a fraction of the gain;
- :mod:`.ranking`: who wins at a budget, how sure, and where one recipe overtakes another;
- :mod:`.backtest`: fit up to a cut, score the rest, beside naive baselines;
- :mod:`.pricing`: FLOPs <-> GPU-hours <-> dollars, and the cost columns of a forecast table;
- :mod:`.run`: one forecast end to end (the question, its answer per group, its costs).
"""
