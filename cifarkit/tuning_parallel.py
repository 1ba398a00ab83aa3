"""Several trials of one search at once on a Ray cluster: keras-tuner's own distributed mode.

The search's Ray job is the chief: it keeps the one oracle (keras-tuner's OracleServicer over
gRPC) and submits CIFARKIT_RAY_TRIAL_WORKERS trial workers as Ray jobs of their own, each asking
for one GPU (or CIFARKIT_RAY_CPUS CPUs) like a run. Each worker is an ordinary keras-tuner
Tuner whose oracle is a client of the chief (KERASTUNER_TUNER_ID/ORACLE_IP/ORACLE_PORT), so
trial.json files, checkpoints and scores land in the search folder exactly as in a one-process
search, and cifarkit.searches reads progress unchanged. keras-tuner's mode was chosen over one
Ray task per trial because the oracle (Bayesian, Hyperband) must see every result before it
proposes the next trial, which keras-tuner already does under its own lock; the chief's wait
loop is ours because keras-tuner's waits forever for a worker that died or was stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifarkit import cluster, failures, rundir, searchdir

if TYPE_CHECKING:
    import keras_tuner

WORKER_LOG = "trials-{tuner}.log"  # each trial worker's output, in the search folder
POLL_SECONDS = 1.0
STOP_GRACE_SECONDS = 60.0  # how long stopping workers may take before Ray stops them
CHIEF_POLL_SECONDS = 5.0  # how often a trial worker checks that its chief still runs


def enabled() -> bool:
    """True in a search's chief on Ray when more than one trial worker is configured."""
    return cluster.inside() and cluster.trial_workers() > 1


def run_chief(tuner: keras_tuner.Tuner, search_dir: Path) -> None:
    """Serve tuner.oracle to trial workers until the oracle has no trial left, STOP is asked
    (tuning.SearchStopped) or every worker has ended (RuntimeError naming their logs)."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief
    from ray.util import get_node_ip_address

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # one oracle call at once
    servicer = oracle_chief.OracleServicer(tuner.oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    port = server.add_insecure_port("0.0.0.0:0")
    server.start()
    try:
        workers = _submit_workers(search_dir, get_node_ip_address(), port)
        _serve(tuner.oracle, servicer, search_dir, workers)
    finally:
        server.stop(grace=5)


def _submit_workers(search_dir: Path, ip: str, port: int) -> list[dict[str, Any]]:
    """One Ray job per trial worker, recorded in status.json (trial_workers) before Ray is
    asked, so that a worker starting at once finds itself wanted (run_worker)."""
    tuner_ids = [f"worker{number}" for number in range(1, cluster.trial_workers() + 1)]
    submissions = [cluster.submission_id(search_dir, tuner_id) for tuner_id in tuner_ids]
    failures.save_status(search_dir, trial_workers=submissions, oracle=f"{ip}:{port}")
    for tuner_id, submission in zip(tuner_ids, submissions, strict=True):
        env = {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": ip,
               "KERASTUNER_ORACLE_PORT": str(port)}
        cluster.submit_command(
            search_dir, WORKER_LOG.format(tuner=tuner_id),
            ["-m", "cifarkit.tuning_parallel", "--search-dir", str(search_dir.resolve())],
            extra_env=env, submission=submission)
    return [{"ray_job": submission, "ray_address": cluster.address()}
            for submission in submissions]


def _serve(oracle: Any, servicer: Any, search_dir: Path, workers: list[dict[str, Any]]) -> None:
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    from cifarkit.tuning import SearchStopped

    while True:
        time.sleep(POLL_SECONDS)
        if servicer.stop_triggered and exit_chief(oracle):
            return  # every trial handed out has ended
        if rundir.stop_requested(search_dir):
            _stop_workers(workers)
            raise SearchStopped("stop requested")
        if not any(cluster.alive(worker) for worker in workers):
            logs = ", ".join(WORKER_LOG.format(tuner=f"worker{n}")
                             for n in range(1, len(workers) + 1))
            raise RuntimeError(f"every trial worker ended before the search did (see {logs})")


def _stop_workers(workers: list[dict[str, Any]]) -> None:
    """Workers see STOP themselves after their current batch; Ray stops what is left after
    STOP_GRACE_SECONDS, and any not started yet at once."""
    for worker in workers:
        cluster.cancel(worker)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while any(cluster.alive(worker) for worker in workers) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for worker in workers:
        if cluster.state(worker) == "RUNNING":
            cluster.client(worker["ray_address"]).stop_job(worker["ray_job"])


def run_worker(search_dir: Path) -> int:
    """A trial worker: trials from the chief's oracle until it has none left, or STOP."""
    from cifarkit import jobs, searches

    jobs.job_dir(searches.KIND, search_dir, search_dir.parent)  # a search folder, nothing else
    chief = rundir.read_status(search_dir)
    if os.environ.get(cluster.IN_RAY) not in chief.get("trial_workers", []) or not cluster.alive(
            chief):  # started late by Ray, after the search ended or was resumed: not wanted
        print("this trial worker's search has ended or was resumed: leaving", flush=True)
        return 0
    from cifarkit import training, tuning  # loads TensorFlow: only once wanted
    from cifarkit.tuneconfig import TuneConfig

    tune = TuneConfig.load(search_dir / searchdir.TUNE).validate()
    training.configure_keras(tune.base)
    dataset, (x_train, y_train), (x_val, y_val) = training.load_splits(tune.base)
    data = tuning.SearchData(x_train, y_train, x_val, y_val, len(dataset.class_names))
    tuner = tuning.make_tuner(tune, tuning.CifarHyperModel(tune, data, search_dir), search_dir)
    threading.Thread(target=_leave_with_chief, args=(chief,), daemon=True).start()
    try:
        tuner.search(epochs=tune.epochs_per_trial, verbose=2)
    except tuning.SearchStopped:
        print(f"{os.environ.get('KERASTUNER_TUNER_ID')}: stop requested")
    return 0


def _leave_with_chief(chief: dict[str, Any]) -> None:
    """End this worker when the search's chief (its Ray job, from status.json) has ended: a
    worker would otherwise wait up to an hour for an oracle that is gone, holding its GPU."""
    while cluster.alive(chief):
        time.sleep(CHIEF_POLL_SECONDS)
    print("the search's chief has ended: this trial worker ends too", flush=True)
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one trial worker of a search on Ray")
    parser.add_argument("--search-dir", type=Path, required=True)
    return run_worker(parser.parse_args(argv).search_dir)


if __name__ == "__main__":
    sys.exit(main())
