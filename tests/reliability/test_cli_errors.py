"""Bad command lines get one line `error: ...` and exit code 2: no traceback, no job folder.

Issue 7 defect 9 (and 10d): every case was a traceback, or was accepted and failed only once a
run folder existed. `{dir}` in a command or message stands for this test's input files' folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cifarkit import cli, settings

LONG_NAME = "x" * 101
FILES = {
    "list.json": b"[1, 2]",
    "null-data.json": b'{"data": null}',
    "object-name.json": b'{"name": {"a": 1}}',
    "broken.json": b'{"training": ',
    "latin1.json": b'{"name": "caf\xe9"}',
    "yes-flip.json": b'{"augment": {"horizontal_flip": "yes"}}',
    "fake.weights.h5": b"not an HDF5 file",
}
CASES = [
    ("train --config {dir}/list.json --epochs 2",
     "{dir}/list.json: must be a JSON object, got a list"),
    ("tune --config {dir}/list.json", "{dir}/list.json: must be a JSON object, got a list"),
    ("train --config {dir}", "{dir}: is a folder, not a JSON file"),
    ("train --config {dir}/absent.json", "{dir}/absent.json: no such file"),
    ("train --config {dir}/broken.json",
     "{dir}/broken.json: not valid JSON (Expecting value: line 1 column 14 (char 13))"),
    ("train --config {dir}/latin1.json", "{dir}/latin1.json: not valid JSON (not UTF-8 text)"),
    ("train --config {dir}/null-data.json --max-train 100", "data: must be an object, got null"),
    ("train --seed 4294967296", "seed: must be at most 4,294,967,295, got 4,294,967,296"),
    ("train --seed -1", "seed: must be a whole number ≥ 0, got -1"),
    ("train --epochs 1000000000", "training.epochs: must be at most 10,000, got 1,000,000,000"),
    ("train --batch-size 100000", "training.batch_size: must be at most 4,096, got 100,000"),
    ("train --max-train 100000000",
     "data.max_train_images: must be at most 10,000,000, got 100,000,000"),
    ("train --input-size 5000",
     "model.input_size: airbench_cpu needs an input size from 32 to 224, got 5000"),
    ("train --config {dir}/object-name.json", "name: must be text, got {'a': 1}"),
    (f"train --name {LONG_NAME}", "name: must be at most 100 characters, got 101"),
    ("train --config {dir}/yes-flip.json",
     "augment.horizontal_flip: must be true or false, got 'yes'"),
    ("train --architecture MobileNet --weights {dir}/absent.weights.h5",
     "model.weights: weights file '{dir}/absent.weights.h5' does not exist "
     "(use 'imagenet', 'none' or a path)"),
    ("train --architecture MobileNet --weights {dir}/fake.weights.h5",
     "model.weights: weights file '{dir}/fake.weights.h5' is not an HDF5 file "
     "(a Keras .weights.h5 file)"),
    ("train --architecture MobileNet --weights {dir}/list.json",
     "model.weights: weights file '{dir}/list.json' must be a Keras .weights.h5 file"),
    ("tune --architecture resnet_fast",
     "base.model.architecture: searches tune custom_cnn only, got 'resnet_fast'"),
    ("tune --epochs-per-trial 100000", "epochs_per_trial: must be at most 10,000, got 100,000"),
    ("runs delete ../x", "not a run id: '../x'"),
    ("runs resume /tmp", "not a run id: '/tmp'"),
    ("tune delete ../x", "not a search id: '../x'"),
    ("evaluate ../x", "not a run id: '../x'"),
]


def job_folders() -> list[Path]:
    return [path for root in (settings.runs_dir(), settings.searches_dir()) if root.is_dir()
            for path in root.iterdir()]


@pytest.mark.parametrize(("command", "message"), CASES,
                         ids=[command.replace("{dir}/", "")[:48] for command, _ in CASES])
def test_bad_input_is_one_line_and_creates_no_folder(
        command: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, content in FILES.items():
        (inputs / name).write_bytes(content)

    code = cli.main(command.replace("{dir}", str(inputs)).split())

    output = capsys.readouterr()
    assert code == 2
    assert output.err.splitlines() == [f"error: {message.replace('{dir}', str(inputs))}"]
    assert "Traceback" not in output.out + output.err
    assert job_folders() == []
