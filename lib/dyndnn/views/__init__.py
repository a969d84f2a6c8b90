"""What a reader sees: the run's figures and the interactive explorer.

``plots`` (the figures each stage saves under ``figures/``), ``tradeoff`` (the trade-off and
comparison figures of the analysis), ``axes`` (units, scales and labels they share),
``explorer`` (the ipywidgets explorer of 05_explore) and ``explorer_view`` (its pure parts:
what each picker and slider shows, testable without widgets).
"""
