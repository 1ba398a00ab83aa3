"""describe(): the parameter counts the Train page shows match the model training will build."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from cifarkit.config import ModelConfig, RunConfig
from cifarkit.models import summary
from cifarkit.models.builder import BACKBONE, build_model, model_stats


def config(**model: object) -> RunConfig:
    return RunConfig(model=ModelConfig(**model)).validate()


def test_scratch_model_counts_match_the_built_model() -> None:
    run = config(architecture="simple_cnn", dense_units=64)
    expected = model_stats(build_model(run, num_classes=7, image_size=32))
    stats = summary.describe(run, num_classes=7, image_size=32)
    assert stats == expected
    assert stats.trainable_params > 0
    # The classifier's last layer alone holds (features + 1) × classes weights: more classes, more.
    assert summary.describe(run, 12, 32).trainable_params - stats.trainable_params == 5 * 65


def test_pretrained_backbone_counts_match_without_downloading(tmp_path: Path) -> None:
    """ImageNet-style weights freeze batch norm; describe() gets that right with random weights."""
    random_start = config(architecture="MobileNetV2", input_size=32, weights="none",
                          trainable_fraction=0.3)
    weights_file = tmp_path / "backbone.weights.h5"
    build_model(random_start, 5, 32).get_layer(BACKBONE).save_weights(weights_file)
    pretrained = config(architecture="MobileNetV2", input_size=32, weights=str(weights_file),
                        trainable_fraction=0.3)
    expected = model_stats(build_model(pretrained, 5, 32))
    stats = summary.describe(pretrained, 5, 32)
    assert stats == expected
    # Frozen batch norm moves parameters from trainable to non-trainable, the total stays.
    random_stats = summary.describe(random_start, 5, 32)
    assert stats.non_trainable_params > random_stats.non_trainable_params
    assert stats.total_params == random_stats.total_params


def test_head_only_trains_just_the_classifier() -> None:
    stats = summary.describe(config(architecture="MobileNetV2", input_size=32, weights="none",
                                    trainable_fraction=0.0), 10, 32)
    assert stats.trainable_params == (1280 + 1) * 10


def test_describe_clears_the_keras_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Streamlit process builds many models; each must be freed after counting."""
    calls: list[int] = []
    real = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session", lambda: (calls.append(1), real()))
    summary.describe(config(architecture="simple_cnn"), 3, 32)
    assert calls == [1]
