"""The deployment recipes under ``deploy/``: every YAML file parses and holds what its
tool needs, every shell script passes ``bash -n``, the SLURM script's ``#SBATCH`` lines
are well formed, the study file the Kubernetes Job ships is a valid study, and the
scripts, run with stand-ins for ``hpsearch`` and ``ray`` on the PATH, start them with the
arguments the README promises."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from conftest import REPO

from hpsearch.cli import app
from hpsearch.study import study_from_dict

DEPLOY = REPO / "deploy"
YAMLS = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
SCRIPTS = sorted([*DEPLOY.rglob("*.sh"), *DEPLOY.rglob("*.sbatch")])
SBATCH = DEPLOY / "slurm" / "hpsearch-array.sbatch"
JOB = DEPLOY / "kubernetes" / "hpsearch-job.yaml"


def _docs(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs), path
    return docs


def _kinds(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _docs(path)}


def _options(command: str) -> set[str]:
    click = typer.main.get_command(app)
    params = click.commands[command].params  # type: ignore[attr-defined]
    return {opt for p in params for opt in p.opts}


def test_there_are_recipes_for_ray_kubernetes_and_slurm():
    names = {p.relative_to(DEPLOY).as_posix() for p in [*YAMLS, *SCRIPTS]}
    assert {
        "ray/cluster.yaml",
        "ray/start-cluster.sh",
        "kubernetes/hpsearch-job.yaml",
        "slurm/hpsearch-array.sbatch",
    } <= names


@pytest.mark.parametrize("path", [*YAMLS, *SCRIPTS], ids=lambda p: p.name)
def test_every_recipe_says_how_to_start_it_and_is_in_the_readme(path):
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^# (Start it|The storage URL|The image)", text, re.MULTILINE), path
    assert path.relative_to(DEPLOY).as_posix() in (DEPLOY / "README.md").read_text()


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_every_yaml_file_parses(path):
    _docs(path)


def test_kubernetes_job_runs_hpsearch_worker_pods_against_a_secret_url():
    kinds = _kinds(JOB)
    job = kinds["Job"]
    assert job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] >= 1 and spec["completions"] == spec["parallelism"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    (container,) = pod["containers"]
    command = [str(c) for c in container["command"]]
    assert command[:2] == ["hpsearch", "worker"]
    assert {c for c in command if c.startswith("--")} <= _options("worker")
    assert command[command.index("--storage") + 1] == "$(HPSEARCH_STORAGE)"
    (env,) = [e for e in container["env"] if e["name"] == "HPSEARCH_STORAGE"]
    ref = env["valueFrom"]["secretKeyRef"]
    secret = _kinds(DEPLOY / "kubernetes" / "secret.example.yaml")["Secret"]
    assert ref["name"] == secret["metadata"]["name"]
    assert secret["stringData"][ref["key"]].startswith("postgresql://")
    # TensorFlow threads = the CPUs the pod asks for (a container sees the node's cores)
    threads = command[command.index("--set") + 1]
    assert threads == f"workers.threads={container['resources']['requests']['cpu']}"
    assert "nvidia.com/gpu: 1" in JOB.read_text()  # ready to uncomment on GPU nodes


def test_kubernetes_job_mounts_a_valid_study_file():
    kinds = _kinds(JOB)
    config_map = kinds["ConfigMap"]
    pod = kinds["Job"]["spec"]["template"]["spec"]
    (volume,) = pod["volumes"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (mount,) = pod["containers"][0]["volumeMounts"]
    study = Path(mount["mountPath"]) / "study.yaml"
    assert str(study) in pod["containers"][0]["command"]
    raw = yaml.safe_load(config_map["data"][study.name])
    study_file = study_from_dict(raw)
    assert study_file.n_trials and study_file.config.model.family == "cnn"


def test_kubernetes_dockerfile_copies_files_that_exist():
    text = (DEPLOY / "kubernetes" / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for name in line.split()[1:-1]:
                assert (REPO / name).exists(), name
    assert 'ENTRYPOINT ["hpsearch"]' in text


def test_ray_cluster_launcher_config():
    cfg = _kinds_free(DEPLOY / "ray" / "cluster.yaml")
    assert cfg["provider"]["type"] == "local"
    assert cfg["provider"]["head_ip"] and cfg["provider"]["worker_ips"]
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])
    workers = cfg["worker_start_ray_commands"]
    assert any("ray start --address=$RAY_HEAD_IP:6379" in c for c in workers)
    assert any("hpsearch[postgres,ray]" in c for c in cfg["setup_commands"])
    assert "--ray auto" in (DEPLOY / "ray" / "cluster.yaml").read_text()


def _kinds_free(path: Path) -> dict[str, Any]:
    (doc,) = _docs(path)
    return doc


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_script_passes_bash_n(path):
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(path, os.X_OK), f"{path} is not executable"
    out = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_sbatch_lines_are_well_formed_and_come_first():
    lines = SBATCH.read_text().splitlines()
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    first_command = next(i for i, line in enumerate(lines[1:], 1) if line and line[0] != "#")
    assert directives and max(directives) < first_command  # sbatch stops reading at a command
    options = {}
    for i in directives:
        match = re.fullmatch(r"#SBATCH --([a-z-]+)=(\S+)", lines[i])
        assert match, lines[i]
        options[match[1]] = match[2]
    assert re.fullmatch(r"\d+-\d+(%\d+)?", options["array"])
    assert options["gres"] == "gpu:1" and options["cpus-per-task"].isdigit()
    assert re.fullmatch(r"(B:)?TERM@\d+", options["signal"])


def _stand_ins(tmp_path: Path, *names: str) -> dict[str, str]:
    """``names`` on the PATH as scripts that print their name and arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in names:
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho {name} "$@"\n')
        tool.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}


def test_sbatch_script_starts_one_worker_with_the_task_cpus(tmp_path):
    env = _stand_ins(tmp_path, "hpsearch")
    env |= {"HPSEARCH_STORAGE": "postgresql://u@db/hp", "SLURM_CPUS_PER_TASK": "4"}
    env |= {"CUDA_VISIBLE_DEVICES": "2", "SLURM_ARRAY_TASK_ID": "3"}
    out = subprocess.run(
        ["bash", str(SBATCH), "studies/mnist_cnn.yaml"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        "hpsearch worker studies/mnist_cnn.yaml --storage postgresql://u@db/hp "
        "--workers 1 --set workers.threads=4"
    )
    assert "task 3 on" in out.stdout and "GPUs 2" in out.stdout
    assert {"--storage", "--workers", "--set"} <= _options("worker")
    del env["HPSEARCH_STORAGE"]
    out = subprocess.run(["bash", str(SBATCH), "x.yaml"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "HPSEARCH_STORAGE" in out.stderr and not out.stdout.strip()


def test_ray_script_starts_the_head_workers_and_the_run(tmp_path):
    script = DEPLOY / "ray" / "start-cluster.sh"
    env = _stand_ins(tmp_path, "ray", "hpsearch")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), *args], env=env | extra, capture_output=True, text=True
        )

    assert run("head").stdout.strip() == "ray start --head --port=6379"
    assert run("worker", "head-host").stdout.strip() == "ray start --address=head-host:6379"
    out = run("run", "s.yaml", "8", HPSEARCH_STORAGE="postgresql://u@db/hp")
    assert out.stdout.strip() == (
        "hpsearch run s.yaml --workers 8 --ray auto --storage postgresql://u@db/hp "
        "--set workers.ray.num_gpus=0"
    )
    assert run("run", "s.yaml", "8").returncode != 0  # no storage: refused
    assert run("nonsense").returncode == 2
