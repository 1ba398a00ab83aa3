"""datalink: a data choice in the URL's query and back, validated like a config file."""

from __future__ import annotations

import pytest

from cifarkit import datalink
from cifarkit.config import ConfigError, DataConfig


def test_only_changed_fields_go_in_and_come_back_the_same() -> None:
    spec = DataConfig(source="cifar100", label_mode="coarse", classes=("trees", "vehicles_1"),
                      validation_split=0.2, max_train_images=500)
    query = datalink.to_query(spec)
    assert query == {"source": "cifar100", "label_mode": "coarse",
                     "classes": "trees,vehicles_1", "validation_split": "0.2",
                     "max_train_images": "500"}
    assert datalink.from_query(query) == spec


def test_defaults_make_an_empty_query_and_an_unrelated_query_names_no_data() -> None:
    assert datalink.to_query(DataConfig()) == {}
    assert datalink.from_query({}) is None
    assert datalink.from_query({"run": "abc"}) is None  # not a DataConfig field: ignored


@pytest.mark.parametrize(("query", "field", "reason"), [
    ({"source": "cifar10", "num_classes": "many"}, "data.num_classes", "must be a number"),
    ({"source": "cifar10", "classes": "cat,unicorn"}, "data.classes", "unicorn"),
    ({"source": "imagenet"}, "data.source", "imagenet"),
])
def test_a_value_the_config_refuses_names_its_field(query: dict[str, str], field: str,
                                                    reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        datalink.from_query(query)
    assert raised.value.field == field and reason in raised.value.reason
