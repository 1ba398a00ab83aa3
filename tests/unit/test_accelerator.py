"""The accelerator path's decisions (cifarkit.accelerator) for fake devices, and a real bf16 run."""

from __future__ import annotations

import numpy as np
import pytest

from cifarkit import accelerator
from cifarkit.accelerator import Devices
from cifarkit.config import TrainingConfig

BF16_CPU = Devices(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}))
PLAIN_CPU = Devices(cpu_flags=frozenset({"avx2", "fma"}))
ONE_GPU = Devices(gpus=("/physical_device:GPU:0",), cpu_flags=frozenset({"avx2"}))
TWO_GPUS = Devices(gpus=("/physical_device:GPU:0", "/physical_device:GPU:1"))
ALL_ON = TrainingConfig(mixed_precision=True, jit_compile=True, distribute=True)


def test_a_cpu_with_bfloat16_computes_in_bfloat16() -> None:
    decision = accelerator.decide(TrainingConfig(mixed_precision=True), BF16_CPU)
    assert decision.policy == "mixed_bfloat16"
    assert (decision.mirrored, decision.replicas, decision.notes) == (False, 1, ())
    amx = Devices(cpu_flags=frozenset({"amx_bf16"}))
    assert accelerator.decide(TrainingConfig(mixed_precision=True), amx).policy == \
        "mixed_bfloat16"


def test_a_cpu_without_bfloat16_stays_float32_and_says_why() -> None:
    decision = accelerator.decide(TrainingConfig(mixed_precision=True), PLAIN_CPU)
    assert decision.policy == "float32"
    assert len(decision.notes) == 1
    assert "training.mixed_precision" in decision.notes[0] and "bfloat16" in decision.notes[0]


def test_one_gpu_uses_float16_and_xla_and_notes_that_distribute_needs_two() -> None:
    decision = accelerator.decide(ALL_ON, ONE_GPU)
    assert (decision.policy, decision.jit_compile) == ("mixed_float16", True)
    assert (decision.mirrored, decision.replicas) == (False, 1)
    assert len(decision.notes) == 1 and "training.distribute: 1 GPU" in decision.notes[0]


def test_two_gpus_mirror_and_double_the_replicas() -> None:
    decision = accelerator.decide(ALL_ON, TWO_GPUS)
    assert (decision.policy, decision.mirrored, decision.replicas) == ("mixed_float16", True, 2)
    assert decision.notes == ()
    alone = accelerator.decide(TrainingConfig(mixed_precision=False), TWO_GPUS)  # one device
    assert (alone.policy, alone.mirrored, alone.replicas) == ("float32", False, 1)


def test_no_gpu_with_distribute_on_is_a_note_and_xla_follows_the_config() -> None:
    decision = accelerator.decide(TrainingConfig(distribute=True), BF16_CPU)
    assert not decision.mirrored and "0 GPU(s)" in decision.notes[0]
    assert accelerator.decide(TrainingConfig(jit_compile=False), ONE_GPU).jit_compile is False
    assert accelerator.decide(TrainingConfig(jit_compile=True), BF16_CPU).jit_compile is True


def test_cpu_flags_are_read_from_cpuinfo_text() -> None:
    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\n"
            "flags\t\t: fpu AVX2 avx512_bf16 amx_bf16\nbogomips\t: 4000\n"
            "processor\t: 1\nflags\t\t: fpu\n")
    assert accelerator.cpu_flags(text) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert accelerator.cpu_flags("no flags here") == frozenset()


def test_the_default_strategy_is_used_without_mirroring() -> None:
    import tensorflow as tf

    decision = accelerator.decide(TrainingConfig(), accelerator.detect())
    chosen = accelerator.strategy(decision)
    assert chosen is tf.distribute.get_strategy()
    assert chosen.num_replicas_in_sync == 1


@pytest.mark.skipif("avx512_bf16" not in accelerator.detect().cpu_flags
                    and "amx_bf16" not in accelerator.detect().cpu_flags,
                    reason="this CPU has no bfloat16 instructions")
def test_a_mixed_precision_run_on_this_cpu_trains_in_bfloat16_with_a_float32_softmax() -> None:
    import keras

    from cifarkit import rundir, runs, training
    from cifarkit.config import CallbacksConfig, DataConfig, ModelConfig, RunConfig

    config = RunConfig(
        data=DataConfig(source="digits", max_train_images=96, max_test_images=32),
        model=ModelConfig(architecture="simple_cnn"),
        training=TrainingConfig(epochs=1, batch_size=32, mixed_precision=True),
        callbacks=CallbacksConfig(early_stopping=False, reduce_lr=False))
    run_dir = runs.create(config)
    try:
        status = training.train(run_dir, verbose=0)
        assert status["status"] == "completed", status.get("error")
        assert status["precision"] == "mixed_bfloat16"
        model = keras.saving.load_model(run_dir / rundir.BEST_MODEL, compile=False)
        assert model.layers[-1].compute_dtype == "float32"
        assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
        images = np.random.default_rng(0).integers(0, 256, (4, *model.input_shape[1:]))
        probs = keras.ops.convert_to_numpy(model(images.astype("float32")))
        assert probs.dtype == "float32"
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # later tests build float32 models
