"""Time-budget arithmetic (cifarkit.budget): whole epochs that end within the budget."""

from __future__ import annotations

import pytest

from cifarkit import budget


def speed(seconds_per_step: float = 0.1, steps: int = 10, overhead: float = 0.5) -> budget.Speed:
    return budget.Speed(seconds_per_step=seconds_per_step, steps_per_epoch=steps,
                        overhead_s=overhead)


def test_epochs_fill_the_budget_and_never_pass_it() -> None:
    # 1.5 s an epoch; at 2 s into epoch 1 with 6 steps (0.6 s) + its overhead (0.5 s) left:
    # epoch 1 ends at 3.1 s, then floor((20 - 3.1) / 1.5) = 11 more
    plan = budget.plan(20.0, 2.0, epoch=1, steps_left=6, speed=speed(), batch_size=32)
    assert plan.epochs == 12
    assert plan.planned_seconds == pytest.approx(3.1 + 11 * 1.5)
    assert plan.planned_seconds <= 20.0 < plan.planned_seconds + 1.5  # one more would not fit
    assert plan.images_per_second == pytest.approx(320.0)
    assert plan.note is None


def test_at_an_epoch_edge_the_finished_epoch_costs_nothing_more() -> None:
    plan = budget.plan(10.0, 4.0, epoch=2, steps_left=0, speed=speed(), batch_size=8)
    assert plan.epochs == 2 + 4  # 6 s left, 1.5 s an epoch
    assert plan.planned_seconds == pytest.approx(10.0)


def test_a_budget_that_cannot_hold_one_epoch_trains_one_and_says_so() -> None:
    plan = budget.plan(10.0, 1.0, epoch=1, steps_left=100, speed=speed(steps=120),
                       batch_size=32)
    assert plan.epochs == 1
    assert plan.note is not None
    assert "training.time_budget_s" in plan.note and "even one epoch" in plan.note
    assert plan.planned_seconds == pytest.approx(1.0 + 100 * 0.1 + 0.5)


def test_a_budget_used_up_mid_run_ends_after_the_epoch_under_way() -> None:
    plan = budget.plan(10.0, 9.9, epoch=3, steps_left=5, speed=speed(), batch_size=32)
    assert plan.epochs == 3 and "epoch 3" in (plan.note or "")


def test_a_budget_that_holds_exactly_the_current_epoch_needs_no_note() -> None:
    plan = budget.plan(3.0, 1.0, epoch=1, steps_left=10, speed=speed(overhead=1.0),
                       batch_size=32)
    assert (plan.epochs, plan.note) == (1, None)


def test_validation_is_estimated_from_the_training_step() -> None:
    assert budget.estimated_overhead(5, 0.2) == pytest.approx(5 * 0.2 * budget.VALIDATION_COST)
    assert budget.estimated_overhead(0, 0.2) == 0.0


def test_a_refit_never_stretches_a_schedule_that_has_ended() -> None:
    ending = budget.Plan(epochs=2, planned_seconds=9.0, images_per_second=100.0, note=None)
    longer = budget.Plan(epochs=4, planned_seconds=19.0, images_per_second=120.0, note=None)
    assert budget.replan(ending, longer, epoch_done=2) is ending
    assert budget.replan(longer, ending, epoch_done=1) is ending


@pytest.mark.parametrize("bad", [dict(budget_s=0.0), dict(seconds_per_step=0.0),
                                 dict(steps=0)])
def test_impossible_inputs_are_refused(bad: dict) -> None:
    args = {"budget_s": 10.0, "seconds_per_step": 0.1, "steps": 10, **bad}
    with pytest.raises(ValueError):
        budget.plan(args["budget_s"], 0.0, epoch=1, steps_left=1,
                    speed=speed(args["seconds_per_step"], args["steps"]), batch_size=8)
