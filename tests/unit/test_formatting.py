"""formatting.plural, and the run line that used to say "1 epochs"."""

from __future__ import annotations

import pytest

from cifarkit.config import ModelConfig, RunConfig, TrainingConfig
from cifarkit.describe import describe_run


@pytest.mark.parametrize(("count", "text"), [(1, "1 epoch"), (0, "0 epochs"), (3, "3 epochs"),
                                             (1200, "1,200 epochs")])
def test_plural(count: int, text: str) -> None:
    from cifarkit.formatting import plural

    assert plural(count, "epoch") == text


def test_plural_irregular() -> None:
    from cifarkit.formatting import plural

    assert (plural(1, "class", "classes"), plural(2, "class", "classes")) == ("1 class",
                                                                             "2 classes")


def test_describe_run_of_one_epoch_says_epoch() -> None:
    config = RunConfig(model=ModelConfig(architecture="custom_cnn", blocks=2, weights="none"),
                       training=TrainingConfig(epochs=1))
    line = describe_run(config)
    assert line.endswith(" · 1 epoch") and "× 2 blocks ·" in line
