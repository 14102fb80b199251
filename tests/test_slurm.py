"""``--launcher slurm`` against a real Slurm: a one-node cluster on 127.0.0.1, started and stopped here.

The cluster (munged, slurmctld, slurmd from Debian's ``munge`` and ``slurm-wlm``) lives in a
temporary folder with its own ``slurm.conf`` and munge key; the daemons run as the current user.
Kept cheap: one two-run sweep of one epoch on the tiny preset. Without Slurm the test is skipped,
except under CI (``CI=true``), where it fails: ``.ci/run`` installs Slurm.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from refdense.experiments.launch import Launch
from refdense.experiments.sweep import sweep

SMALL = ("data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", "model.dim=16",
         "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16", "model.local_hidden=32",
         "optim.batch_size=4", "optim.lr=3e-3", "run.device=cpu")
DAEMONS = ("munged", "slurmctld", "slurmd")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _find(name: str) -> str | None:
    """The daemon's path: on PATH, or in /usr/sbin (Debian's place, off a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(what: str, ready, logs: list[Path], seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > end:
            tails = "\n".join(f"{log}:\n{log.read_text()[-2000:]}" for log in logs if log.is_file())
            raise AssertionError(f"{what} not ready after {seconds:.0f} s\n{tails}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running one-node cluster: yields the environment variables its clients need."""
    missing = [name for name in DAEMONS if _find(name) is None]
    if missing:
        message = f"Slurm is not installed ({', '.join(missing)} not found; Debian: apt-get install slurm-wlm munge)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="refdense-slurm-"))  # short: a socket path has at most 107 bytes
    processes: list[subprocess.Popen] = []
    try:
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = root / "munge.socket"
        subprocess.run([_find("munged"), "--force", f"--key-file={key}", f"--socket={socket_path}",
                        f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munged.seed'}",
                        f"--log-file={root / 'munged.log'}"], check=True, timeout=30)
        for folder in ("state", "spool"):
            (root / folder).mkdir()
        host = socket.gethostname().split(".")[0]
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        conf = root / "slurm.conf"
        conf.write_text("\n".join([
            "ClusterName=refdense",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={socket_path}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "ReturnToService=2",
            f"NodeName=refdense NodeHostname={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
            "PartitionName=test Nodes=refdense Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        env = {"SLURM_CONF": str(conf)}
        daemon_env = {**os.environ, **env}
        processes.append(subprocess.Popen([_find("slurmctld"), "-D", "-c", "-f", str(conf)], env=daemon_env,
                                          stdout=subprocess.DEVNULL, stderr=open(root / "slurmctld.err", "w")))
        processes.append(subprocess.Popen([_find("slurmd"), "-D", "-N", "refdense", "-f", str(conf)], env=daemon_env,
                                          stdout=subprocess.DEVNULL, stderr=open(root / "slurmd.err", "w")))
        logs = [root / name for name in ("slurmctld.log", "slurmd.log", "slurmctld.err", "slurmd.err", "munged.log")]

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-n", "refdense", "-o", "%T"], env=daemon_env,
                                   capture_output=True, text=True)
            return state.stdout.strip() == "idle"

        _wait("the Slurm node", idle, logs)
        yield env
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if (root / "munged.pid").is_file():
            subprocess.run([_find("munged"), "--stop", f"--socket={root / 'munge.socket'}"], timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slurm
def test_a_sweep_through_slurm_equals_the_local_sweep(slurm_cluster, tmp_path, monkeypatch):
    for name, value in slurm_cluster.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REFDENSE_DATA", str(tmp_path / "data"))
    kwargs = dict(preset="tiny", variants=("full", "no_colv"), seeds=(1,), epochs=1, overrides=SMALL, progress=False)
    local = json.loads(sweep("coupling", [0.0], tmp_path / "local", **kwargs).read_text())
    launch = Launch(launcher="slurm", slurm_cpus_per_job=1, slurm_time=10)
    out = tmp_path / "slurm"
    cluster = json.loads(sweep("coupling", [0.0], out, launch=launch, **kwargs).read_text())
    assert cluster["runs"].keys() == local["runs"].keys()
    for name in ("full", "no_colv"):
        for a, b in zip(local["runs"]["0"][name], cluster["runs"]["0"][name], strict=True):
            assert b.keys() == a.keys() and b["run"] == a["run"]
            for metric in ("mAP", "mAP_ac", "F1_ac"):
                assert b[metric] == pytest.approx(a[metric], abs=1e-9, nan_ok=True), (name, metric)
    jobs = sorted(p.name for p in (out / "slurm").glob("*_log.out"))
    assert len(jobs) == 2, jobs  # one job per run, both logged
    # started again: both runs are finished, nothing is submitted
    again = json.loads(sweep("coupling", [0.0], out, launch=launch, **kwargs).read_text())
    assert again["runs"] == cluster["runs"]
    assert sorted(p.name for p in (out / "slurm").glob("*_log.out")) == jobs
