"""Search engines: Optuna (default). Each writes its trials as Optuna trials."""

from hpsearch.engines._optuna import StudyInterrupted, budget_spent, run_optuna

__all__ = ["StudyInterrupted", "budget_spent", "run_optuna"]
