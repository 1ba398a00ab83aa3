"""Runs and search trials in words: the lines the Train and Tune pages show under a heading."""

from __future__ import annotations

from typing import Any

from cifarkit.config import RunConfig
from cifarkit.formatting import plural

HYPERPARAMETER_NAMES = {"base_filters": "Filters", "blocks": "Blocks", "dropout": "Dropout",
                        "learning_rate": "Learning rate", "optimizer": "Optimizer",
                        "augmentation": "Augmentation", "batch_size": "Batch size"}


def format_value(name: str, value: Any) -> str:
    """A hyperparameter's value as the trials table shows it ('–' when a trial has none)."""
    if value is None:
        return "–"
    if name == "learning_rate":
        return f"{value:.2g}"
    if name in ("dropout", "augmentation"):
        return f"{value:.2f}"
    return str(value)


def format_score(value: Any, objective: str) -> str:
    """An objective's value: accuracies as percentages, losses with four decimals."""
    if not isinstance(value, (int, float)):
        return "–"
    return f"{value:.1%}" if objective.endswith("accuracy") else f"{value:.4f}"


def settings_line(values: dict[str, Any], names: list[str]) -> str:
    """'Filters **32** · Blocks **3** · …' (Markdown) for the named hyperparameters."""
    return " · ".join(f"{HYPERPARAMETER_NAMES[name]} **{format_value(name, values.get(name))}**"
                      for name in names)


def describe_run(config: RunConfig) -> str:
    """One line of what a custom-CNN run trains, in the words of the Tune form."""
    model, optimizer = config.model, config.optimizer
    return (f"{model.architecture} with {model.base_filters} filters × "
            f"{plural(model.blocks, 'block')} · dropout {model.dropout:.2f} · {optimizer.name} "
            f"at learning rate {optimizer.learning_rate:.2g} · batch "
            f"{config.training.batch_size} · augmentation {config.augment.rotation:.2f} · "
            f"{plural(config.training.epochs, 'epoch')}")
