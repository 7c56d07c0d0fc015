"""Evaluation in gymnasium environments."""

from gemkit.eval.evaluate import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate"]
