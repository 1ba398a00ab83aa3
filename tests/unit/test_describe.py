"""Trial and run wording on the Tune page."""

from __future__ import annotations

from cifarkit.config import ModelConfig, OptimizerConfig, RunConfig, TrainingConfig
from cifarkit.describe import describe_run, format_score, format_value, settings_line


def test_values_and_scores_read_as_in_the_trials_table() -> None:
    assert format_value("learning_rate", 0.000312) == "0.00031"
    assert format_value("dropout", 0.25) == "0.25"
    assert format_value("blocks", 3) == "3"
    assert format_value("blocks", None) == "–"
    assert format_score(0.4567, "val_accuracy") == "45.7%"
    assert format_score(1.23456, "val_loss") == "1.2346"
    assert format_score(None, "val_loss") == "–"


def test_settings_line_names_each_hyperparameter() -> None:
    line = settings_line({"base_filters": 32, "learning_rate": 0.001}, ["base_filters",
                                                                         "learning_rate", "blocks"])
    assert line == "Filters **32** · Learning rate **0.001** · Blocks **–**"


def test_describe_run_says_blocks_in_the_singular_for_one() -> None:
    config = RunConfig(model=ModelConfig(architecture="custom_cnn", base_filters=16, blocks=1,
                                         dropout=0.3, weights="none"),
                       optimizer=OptimizerConfig(name="sgd", learning_rate=0.01),
                       training=TrainingConfig(epochs=7, batch_size=32))
    assert describe_run(config) == (
        "custom_cnn with 16 filters × 1 block · dropout 0.30 · sgd at learning rate 0.01 · "
        "batch 32 · augmentation 0.00 · 7 epochs")
