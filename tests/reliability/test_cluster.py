"""Jobs on a Ray cluster (CIFARKIT_RAY_ADDRESS): a real local Ray head on 127.0.0.1, started
here and stopped afterwards; runs and a search go through Ray's Jobs API to the same folders."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from cifarkit import cluster, rundir, runs, searchdir, searches
from tests.conftest import wait_for
from tests.unit.test_runs import tiny_config
from tests.unit.test_tuning import tiny_tune

# A Ray driver whose local cluster (head, dashboard with the Jobs API) lives as long as it
# does: stopping it stops that cluster only, never another Ray on this machine.
HEAD = """
import sys, ray
context = ray.init(num_cpus=4, include_dashboard=True, dashboard_host="127.0.0.1",
                   dashboard_port=int(sys.argv[1]), _temp_dir=sys.argv[2])
print("READY", flush=True)
sys.stdin.read()
"""


# Without CIFARKIT_RAY_ADDRESS: make, list and read a job as the app and the CLI do.
LOCAL = """
import sys
from cifarkit import cli, cluster, jobs, queue, runs, searches
from tests.unit.test_runs import tiny_config
run_dir = runs.create(tiny_config(epochs=1))
assert runs.load(run_dir.name).status == "interrupted"  # no worker: liveness was asked
assert [run.run_id for run in runs.list_runs()] == [run_dir.name] and not searches.list_searches()
cli.main(["runs", "list"])
print("ray modules:", sorted(name for name in sys.modules if name.split(".")[0] == "ray"))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """The address of a fresh local Ray head (token auth off: it serves 127.0.0.1 only)."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the client reads it too
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths have a limit
    head = subprocess.Popen([sys.executable, "-c", HEAD, str(port), temp], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert head.stdout.readline().strip() == "READY"
        yield f"http://127.0.0.1:{port}"
    finally:
        head.terminate()
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)  # its logs and sockets
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture
def on_ray(ray_head: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CIFARKIT_RAY_ADDRESS", ray_head)
    return ray_head


def count_state_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Forget cached job states, then record each request for them (by address)."""
    cluster._states.clear()
    asked: list[str] = []
    fetch = cluster._fetch_states
    monkeypatch.setattr(cluster, "_fetch_states", lambda at: asked.append(at) or fetch(at))
    return asked


def folder_files(path: Path) -> set[str]:
    return {str(item.relative_to(path)) for item in path.rglob("*") if item.is_file()}


@pytest.mark.slow
def test_a_run_on_ray_outlives_its_launcher_and_leaves_the_folder_a_local_run_does(
        on_ray: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tiny_config(epochs=1).save(tmp_path / "run.json")
    launcher = subprocess.run([sys.executable, "-m", "cifarkit", "train", "--config",
                               str(tmp_path / "run.json"), "--detach"],
                              capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 0, launcher.stderr[-2000:]
    (run,) = runs.list_runs()  # the launcher has exited: Ray runs the job on its own
    assert launcher.stdout.startswith(f"started run {run.run_id}")
    info = rundir.read_status(run.path)
    assert info["ray_job"].startswith(f"cifarkit-{run.run_id}-")
    assert info["ray_address"] == on_ray
    done = runs.wait(run.run_id, timeout=240)
    assert done.status == "completed", (run.path / "train.log").read_text()[-2000:]
    assert (run.path / "eval.json").is_file()
    wait_for(lambda: cluster.state(done.info) == "SUCCEEDED", timeout=60, what="Ray's ending")

    monkeypatch.delenv("CIFARKIT_RAY_ADDRESS")
    local = runs.wait(runs.launch(tiny_config(epochs=1)).run_id, timeout=240)
    assert local.status == "completed"
    assert local.info.get("ray_job") is None
    assert folder_files(done.path) == folder_files(local.path)


def test_stop_on_a_job_ray_has_not_started_cancels_it_and_resume_requeues_it(
        on_ray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.CPUS, "64")  # more than the cluster has: Ray keeps it pending
    run, other = runs.launch(tiny_config(epochs=1)), runs.launch(tiny_config(epochs=1))
    first = run.info["ray_job"]
    assert cluster.state(run.info) == "PENDING"
    asked = count_state_requests(monkeypatch)
    assert [job.status for job in runs.list_runs()] == ["queued", "queued"]
    assert asked == [on_ray]  # one request for the whole listing, not one per job

    runs.stop(run.run_id)
    cancelled = runs.load(run.run_id)
    assert cancelled.status == "cancelled"
    assert cancelled.can_resume
    # Ray starts a stopped waiting job once resources free up, only to stop it: if its worker
    # gets going first, it leaves before touching the folder.
    late = subprocess.run([sys.executable, "-m", "cifarkit", "train", "--run-dir", str(run.path)],
                          env={**os.environ, cluster.IN_RAY: first}, capture_output=True,
                          text=True, timeout=120)
    assert late.returncode == 0, late.stderr[-2000:]
    assert "this Ray submission was cancelled or replaced" in late.stdout
    assert runs.load(run.run_id).status == "cancelled"
    assert not rundir.read_metrics(run.path) and not (run.path / "model.keras").exists()

    resumed = runs.resume(run.run_id)
    assert resumed.status == "queued"
    assert resumed.info["ray_job"] != first
    assert cluster.state(resumed.info) == "PENDING"
    for job in (run, other):
        runs.stop(job.run_id)
        assert runs.load(job.run_id).status == "cancelled"


@pytest.mark.slow
def test_stop_on_a_running_ray_job_ends_it_stopped_with_its_checkpoint(on_ray: str) -> None:
    run = runs.launch(tiny_config(epochs=50))
    wait_for(lambda: rundir.read_metrics(run.path), timeout=240, what="a first epoch on Ray")
    assert runs.load(run.run_id).status == "running"
    runs.stop(run.run_id)
    stopped = runs.wait(run.run_id, timeout=120)
    assert stopped.status == "stopped"
    assert (run.path / "model.keras").is_file()
    assert stopped.info["epochs_run"] < 50
    # It ended itself (exit 0), Ray did not kill it.
    wait_for(lambda: cluster.state(stopped.info) == "SUCCEEDED", timeout=60, what="its exit")


def test_a_job_asks_for_one_gpu_on_a_cluster_with_gpus_else_the_cpu_setting(
        on_ray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray.util.state  # here: collecting the suite needs no Ray

    monkeypatch.setattr(cluster, "_has_gpus", {})
    monkeypatch.setenv(cluster.CPUS, "64")  # more than the head has: both stay pending
    ray_client, sent = cluster.client(on_ray), []
    submit = ray_client.submit_job  # still submits: only what was asked is noted
    monkeypatch.setattr(ray_client, "submit_job",
                        lambda **asked: sent.append(asked) or submit(**asked))
    cpu_run = runs.launch(tiny_config(epochs=1))  # this head has no GPU
    gpu_node = SimpleNamespace(resources_total={"CPU": 8.0, "GPU": 2.0})
    monkeypatch.setattr(cluster, "_has_gpus", {})
    monkeypatch.setattr(ray.util.state, "list_nodes", lambda **_: [gpu_node])
    gpu_run = runs.launch(tiny_config(epochs=1))
    resources = [{key: value for key, value in asked.items() if key.startswith("entrypoint_num")}
                 for asked in sent]
    assert resources == [{"entrypoint_num_cpus": 64.0}, {"entrypoint_num_gpus": 1}]
    assert [asked["submission_id"] for asked in sent] == [cpu_run.info["ray_job"],
                                                           gpu_run.info["ray_job"]]
    for run in (cpu_run, gpu_run):
        runs.stop(run.run_id)
        assert runs.load(run.run_id).status == "cancelled"


def test_a_bad_cpu_setting_fails_the_job_naming_the_variable(
        on_ray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "_has_gpus", {on_ray: False})
    monkeypatch.setenv(cluster.CPUS, "four")
    with pytest.raises(runs.RunError) as caught:
        runs.launch(tiny_config(epochs=1))
    assert str(caught.value) == "CIFARKIT_RAY_CPUS must be a number of CPUs above 0, got 'four'"
    (folder,) = runs.root_dir().iterdir()
    assert runs.load(folder.name).status == "failed"
    assert runs.load(folder.name).info["error"] == str(caught.value)


def test_local_jobs_need_no_ray(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CIFARKIT_RAY_ADDRESS"}
    local = subprocess.run([sys.executable, "-c", LOCAL], env=env, capture_output=True,
                           text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert local.returncode == 0, local.stderr[-2000:]
    assert local.stdout.splitlines()[-1] == "ray modules: []"


def test_an_unreachable_cluster_fails_the_job_in_one_line_naming_the_address(
        monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("CIFARKIT_RAY_ADDRESS", address)
    with pytest.raises(runs.RunError) as caught:
        runs.launch(tiny_config(epochs=1))
    message = str(caught.value)
    assert message.startswith(f"the Ray cluster at {address} cannot be reached")
    assert "\n" not in message
    (folder,) = runs.root_dir().iterdir()
    failed = runs.load(folder.name)
    assert failed.status == "failed"
    assert failed.info["error"] == message
    assert failed.config == tiny_config(epochs=1)  # nothing lost: it can be resumed later
    assert failed.can_resume


@pytest.mark.slow
def test_a_search_on_ray_runs_trials_in_parallel_workers(
        on_ray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.TRIAL_WORKERS, "2")
    search = searches.launch_search(tiny_tune(max_trials=2))
    done = searches.wait_search(search.search_id, timeout=300)
    assert done.status == "completed", (search.path / searchdir.LOG).read_text()[-2000:]
    assert len(done.info["trial_workers"]) == 2
    fits = [(search.path / f"trials-worker{n}.log").read_text().count(" - val_accuracy: ")
            for n in (1, 2)]
    assert fits == [1, 1]  # each worker trained one of the two trials
    progress = searches.search_progress(search.search_id)
    assert progress["status"] == "completed"
    assert progress["finished"] == 2
    assert progress["best"] is not None
    assert sorted(progress["table"]["trial"]) == [0, 1]


@pytest.mark.slow
def test_stop_on_a_parallel_search_ends_it_and_every_trial_worker(
        on_ray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cluster.TRIAL_WORKERS, "2")
    search = searches.launch_search(tiny_tune(max_trials=4, epochs_per_trial=20, epochs=20))
    wait_for(lambda: rundir.latest_batch(search.path), timeout=240, what="a trial training")
    searches.stop_search(search.search_id)
    stopped = searches.wait_search(search.search_id, timeout=180)
    assert stopped.status == "stopped", (search.path / searchdir.LOG).read_text()[-2000:]
    workers = [{"ray_job": job, "ray_address": on_ray} for job in stopped.info["trial_workers"]]
    assert len(workers) == 2
    wait_for(lambda: not any(cluster.alive(worker) for worker in workers), timeout=120,
             what="the trial workers ending")
    progress = searches.search_progress(search.search_id)
    assert progress["status"] == "stopped"
    assert progress["unfinished"]  # cut short, not scored: a resume runs them again
