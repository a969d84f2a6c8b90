"""What a trained model scores and what its switches cost: the tables of the evaluate stage.

``accuracy`` (accuracy and correct-class confidence per configuration, the paper's Figs 2
and 3), ``switch_cost`` (a switch's cost per backend), ``eval_table`` (a run's ``eval.csv``).
"""

from dyndnn.evaluation.accuracy import EVAL_COLUMNS, evaluate_configurations, score
from dyndnn.evaluation.eval_table import evaluate_run
from dyndnn.evaluation.switch_cost import switch_costs

__all__ = ["EVAL_COLUMNS", "evaluate_configurations", "evaluate_run", "score", "switch_costs"]
