"""In-context evaluation: the paper's conditions (``conditions``), what they measure (``metrics``), the report
(``report``) and the suite that plays every agent on every condition (``suite``)."""

from .conditions import CONDITIONS, TRAINED, UNTRAINED, WIPED, Condition, demonstration_episode, make_condition
from .metrics import condition_summary, summarize, trajectory
from .report import write_report
from .suite import DEFAULT_BASELINES, evaluate_condition, evaluate_data_quality, evaluate_model

__all__ = [
    "CONDITIONS",
    "DEFAULT_BASELINES",
    "TRAINED",
    "UNTRAINED",
    "WIPED",
    "Condition",
    "condition_summary",
    "demonstration_episode",
    "evaluate_condition",
    "evaluate_data_quality",
    "evaluate_model",
    "make_condition",
    "summarize",
    "trajectory",
    "write_report",
]
