"""Values over a critic ensemble (Eq. 3), the lambda schedule and the score rule (Eq. 4)."""

from gemkit.scorers.schedule import LambdaSchedule
from gemkit.scorers.score import combine_score
from gemkit.scorers.values import EnsembleValue, ensemble_q, lcb

__all__ = ["EnsembleValue", "LambdaSchedule", "combine_score", "ensemble_q", "lcb"]
