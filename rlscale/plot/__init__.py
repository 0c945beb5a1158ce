"""Charts and the offline report (the last stage of the data flow).

- :mod:`.charts`: Altair charts of curves, fits, parameters, residuals, backtests; one ``save``;
- :mod:`.frames`: the long tables behind the charts (pure pandas, testable on numbers);
- :mod:`.levels`: how fitted parameters move with a numeric key such as the pretraining level;
- :mod:`.passk`: pass@k curves per difficulty;
- :mod:`.vega`: the inlined Vega bundle, HTML embedding and image export (no network);
- :mod:`.report`: the one-file offline HTML report.

Chart functions return charts and never write files.
"""
