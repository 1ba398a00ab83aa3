"""Temperature scaling: exact on probabilities, fitted the right way round, and used at the end
of a run (scoring.finish_run) together with flip test-time augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from cifarkit import calibration, datasets, rundir, scoring
from cifarkit.config import RunConfig
from cifarkit.evaluation import Predictions, expected_calibration_error
from cifarkit.predict import Inference, run_inference
from cifarkit.training import PreparedData

CLASSES = 10
SAMPLES = 4000


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def calibrated_model(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): a perfectly calibrated model, by design."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (SAMPLES, CLASSES))
    probs = softmax(logits)
    labels = np.array([rng.choice(CLASSES, p=row) for row in probs])
    return logits, labels


def ece(probs: np.ndarray, labels: np.ndarray) -> float:
    names = [str(i) for i in range(probs.shape[1])]
    return expected_calibration_error(Predictions(y_true=labels, probs=probs, class_names=names))


def test_apply_temperature_is_softmax_of_scaled_logits() -> None:
    logits = np.random.default_rng(1).normal(0, 3, (50, 7))
    for temperature in (0.5, 1.0, 2.5):
        np.testing.assert_allclose(
            calibration.apply_temperature(softmax(logits), temperature),
            softmax(logits / temperature), rtol=1e-5, atol=1e-7)
    sharpened = calibration.apply_temperature(softmax(logits), 0.5)
    assert (sharpened.max(axis=1) >= softmax(logits).max(axis=1) - 1e-6).all()
    np.testing.assert_allclose(sharpened.sum(axis=1), 1.0, rtol=1e-5)
    assert (sharpened.argmax(axis=1) == logits.argmax(axis=1)).all()  # accuracy is unchanged


def test_an_over_confident_model_gets_a_temperature_above_one() -> None:
    logits, labels = calibrated_model()
    over = softmax(logits * 2)  # twice as sure as it should be
    temperature = calibration.fit_temperature(over, labels)
    assert temperature == pytest.approx(2.0, rel=0.1)
    fixed = calibration.apply_temperature(over, temperature)
    assert ece(fixed, labels) < ece(over, labels) / 3


def test_an_under_confident_model_is_sharpened() -> None:
    logits, labels = calibrated_model(seed=2)
    under = softmax(logits * 0.6)  # label smoothing's effect: too unsure
    temperature = calibration.fit_temperature(under, labels)
    assert temperature == pytest.approx(0.6, rel=0.1)
    assert ece(calibration.apply_temperature(under, temperature), labels) < ece(under, labels)


def test_a_calibrated_model_keeps_a_temperature_near_one() -> None:
    logits, labels = calibrated_model(seed=3)
    assert calibration.fit_temperature(softmax(logits), labels) == pytest.approx(1.0, abs=0.08)


def test_a_degenerate_validation_set_stops_at_the_bound() -> None:
    """Every validation image right: NLL keeps falling as T -> 0; the search stops at the bound."""
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]] * 10)
    labels = np.array([0, 1] * 10)
    temperature = calibration.fit_temperature(probs, labels)
    assert temperature == pytest.approx(calibration.MIN_TEMPERATURE, rel=0.01)


def test_bad_input_is_named() -> None:
    probs = softmax(np.zeros((4, 3)))
    for temperature in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="temperature"):
            calibration.apply_temperature(probs, temperature)
    with pytest.raises(ValueError, match="one label per probability row"):
        calibration.fit_temperature(probs, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        calibration.fit_temperature(probs, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        calibration.apply_temperature(np.ones(3), 2.0)


# --------------------------------------------------------------- the end of a run


def lopsided_model(seed: int = 0) -> keras.Model:
    """A tiny classifier that is not mirror-symmetric, so flip TTA changes its answers."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def prepared(seed: int = 0) -> PreparedData:
    """Validation and test arrays the end of a run reads (no tf.data: nothing is trained)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 60)
    dataset = datasets.Dataset("tiny", images[:40], labels[:40], images[40:], labels[40:],
                               ["a", "b", "c"])
    return PreparedData(train=None, validation=None, x_test=images[40:], y_test=labels[40:],
                        dataset=dataset, steps_per_epoch=1, x_train=images[:20],
                        y_train=labels[:20], x_val=images[20:40], y_val=labels[20:40])


def mirrored_mean(model: keras.Model, images: np.ndarray) -> np.ndarray:
    plain = model.predict(images.astype("float32"), verbose=0)
    mirror = model.predict(images[:, :, ::-1].astype("float32"), verbose=0)
    return (plain + mirror) / 2


def finish(tmp_path: Path, raw: dict) -> tuple[Path, dict, keras.Model, PreparedData]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = RunConfig.from_dict(raw)
    config.save(run_dir / rundir.CONFIG)
    model, data = lopsided_model(), prepared()
    status = scoring.finish_run(run_dir, config, model, data, stopped=False)
    return run_dir, status, model, data


def test_finish_run_scores_with_flip_tta_and_a_validation_temperature(tmp_path: Path) -> None:
    run_dir, status, model, data = finish(tmp_path, {})  # defaults: flip TTA on, calibrate on
    tta_val = mirrored_mean(model, data.x_val)
    expected_t = calibration.fit_temperature(tta_val, data.y_val)
    assert status["temperature"] == pytest.approx(expected_t, rel=1e-3)
    assert status["temperature"] != 1.0
    saved = Predictions.load(run_dir / rundir.PREDICTIONS)
    tta_test = mirrored_mean(model, data.x_test)
    assert not np.allclose(tta_test, model.predict(data.x_test.astype("float32"), verbose=0))
    np.testing.assert_allclose(
        saved.probs, calibration.apply_temperature(tta_test, status["temperature"]), atol=1e-5)
    metrics = json.loads((run_dir / rundir.EVAL).read_text())
    assert metrics["ece"] == pytest.approx(expected_calibration_error(saved))
    assert metrics["ece_uncalibrated"] == pytest.approx(ece(tta_test, data.y_test), rel=1e-4)
    assert status["test_ece"] == metrics["ece"]
    assert run_inference(run_dir) == Inference(flip_tta=True, temperature=status["temperature"])


def test_finish_run_without_tta_or_calibration_is_the_plain_model(tmp_path: Path) -> None:
    run_dir, status, model, data = finish(tmp_path, {"augment": {"flip_tta": False},
                                                     "training": {"calibrate": False}})
    assert status["temperature"] == 1.0
    saved = Predictions.load(run_dir / rundir.PREDICTIONS)
    np.testing.assert_allclose(
        saved.probs, model.predict(data.x_test.astype("float32"), verbose=0), atol=1e-6)
    metrics = json.loads((run_dir / rundir.EVAL).read_text())
    assert metrics["ece_uncalibrated"] == pytest.approx(metrics["ece"])
    assert run_inference(run_dir) == Inference()
