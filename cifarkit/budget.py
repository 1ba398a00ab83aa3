"""Time-budget arithmetic: how many whole epochs fit in the seconds left, at the measured speed.

Pure functions (no Keras), so the plan can be tested without training anything. A budgeted run
(training.TimeBudget) measures its own seconds per step in its first steps, plans with them, and
plans again with whole measured epochs; the learning-rate schedule is then stretched to exactly
the planned epochs, so it completes on the last one instead of being cut in the middle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SKIP_STEPS = 2  # first steps not timed: tracing/compiling the step and filling the pipeline
MEASURE_STEPS = 4  # timed steps (after the skipped ones) before the first plan
MEASURE_SECONDS = 0.5  # ... and at least this long, so timer noise stays small
VALIDATION_COST = 0.4  # a validation step costs about this share of a training step (forward only)


@dataclass(frozen=True)
class Speed:
    """What one epoch costs, measured."""

    seconds_per_step: float  # one training step (a batch, forward + backward)
    steps_per_epoch: int  # training steps in an epoch
    overhead_s: float  # per epoch besides training steps: validation, checkpoints, epoch edges

    @property
    def epoch_seconds(self) -> float:
        return self.steps_per_epoch * self.seconds_per_step + self.overhead_s


@dataclass(frozen=True)
class Plan:
    """How long a budgeted run trains."""

    epochs: int  # whole epochs the run trains in all (earlier attempts' included)
    planned_seconds: float  # predicted training time at the end of the last epoch
    images_per_second: float  # measured training speed
    note: str | None  # set when the budget cannot hold even the epoch under way


def estimated_overhead(validation_steps: int, seconds_per_step: float) -> float:
    """Validation's cost before any epoch has ended (checkpoints are timed after epoch 1)."""
    return validation_steps * seconds_per_step * VALIDATION_COST


def plan(budget_s: float, elapsed_s: float, epoch: int, steps_left: int, speed: Speed,
         batch_size: int) -> Plan:
    """The whole number of epochs that ends within budget_s on the training clock.

    epoch: the epoch under way (1-based), or the one just finished with steps_left=0 and its
    overhead already paid. The run never ends before that epoch is finished (a stop is for the
    user, a budget ends on an epoch edge), so a budget too small for it says so in the note.
    """
    if budget_s <= 0 or speed.seconds_per_step <= 0 or speed.steps_per_epoch < 1:
        raise ValueError("budget, seconds per step and steps per epoch must be positive, got "
                         f"{budget_s}, {speed.seconds_per_step}, {speed.steps_per_epoch}")
    in_epoch = steps_left * speed.seconds_per_step + (speed.overhead_s if steps_left else 0.0)
    current_end = elapsed_s + in_epoch
    more = math.floor((budget_s - current_end) / speed.epoch_seconds) if current_end < budget_s \
        else 0
    epochs = epoch + max(more, 0)
    note = None
    if current_end > budget_s:
        what = "even one epoch" if epoch == 1 else f"epoch {epoch}"
        note = (f"training.time_budget_s: {budget_s:g} s cannot hold {what} at the measured "
                f"speed (about {speed.epoch_seconds:.1f} s an epoch); training ends after "
                f"epoch {epoch}, at about {current_end:.0f} s")
    return Plan(epochs=epochs,
                planned_seconds=round(current_end + (epochs - epoch) * speed.epoch_seconds, 3),
                images_per_second=round(batch_size / speed.seconds_per_step, 1), note=note)


def replan(previous: Plan, fresh: Plan, epoch_done: int) -> Plan:
    """The plan after a refit at the end of epoch_done: a schedule that has already ended (the
    previous plan stops here) is never stretched again, so the run ends as planned."""
    if previous.epochs <= epoch_done:
        return previous
    return fresh
