"""``hpsearch browse``: optuna-dashboard on the study's storage, read over HTTP while
another process adds trials to the same SQLite study."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from hpsearch.browse import DashboardServer, resolve_target
from hpsearch.cli import app

N_TRIALS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def _hpsearch() -> str:
    return str(Path(sys.executable).with_name("hpsearch"))


def _study_exists(db: Path, name: str) -> bool:
    if not db.exists():
        return False
    try:
        return name in optuna.get_all_study_names(storage=f"sqlite:///{db}")
    except Exception:  # the file is being created
        return False


@pytest.mark.slow  # two processes, one of them training
def test_browse_reads_a_study_while_another_process_adds_trials(tmp_path, write_study):
    study_file = write_study(
        "live", search={"sampler": "random", "n_trials": N_TRIALS, "seed": 0}, space__epochs=2
    )
    db = tmp_path / "hpsearch.db"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    runner = subprocess.Popen(
        [_hpsearch(), "run", str(study_file), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    browser: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 120
        while not _study_exists(db, "live"):
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline, "the study never appeared"
            time.sleep(0.2)
        port = _free_port()
        browser = subprocess.Popen(
            [_hpsearch(), "browse", str(study_file), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert browser.stdout is not None
        assert browser.stdout.readline().strip() == f"optuna-dashboard on sqlite:///{db}"
        url = browser.stdout.readline().split()[0]
        assert url == f"http://127.0.0.1:{port}/dashboard/studies/1"  # 127.0.0.1 by default
        base = f"http://127.0.0.1:{port}"

        seen: list[int] = []
        while runner.poll() is None:
            studies = _get(f"{base}/api/studies")["study_summaries"]
            assert [s["study_name"] for s in studies] == ["live"]
            detail = _get(f"{base}/api/studies/{studies[0]['study_id']}?after=0")
            # the unspent budget waits as queued slots (state Waiting)
            seen.append(sum(t["state"] != "Waiting" for t in detail["trials"]))
            time.sleep(0.3)
        out, err = runner.communicate()
        assert runner.returncode == 0, err
        assert "locked" not in err
        # read while it ran: the dashboard saw the study before it was finished
        assert seen and seen[0] < N_TRIALS, seen
        assert seen == sorted(seen) and len(set(seen)) > 1  # it saw trials arrive

        time.sleep(2.5)  # optuna-dashboard caches a study's trials for 2 s
        detail = _get(f"{base}/api/studies/1?after=0")
        trials = detail["trials"]
        assert [t["number"] for t in trials] == list(range(N_TRIALS))
        assert {t["state"] for t in trials} <= {"Complete", "Pruned"}
        assert all(len(t["intermediate_values"]) >= 1 for t in trials)
        assert detail["best_trials"] and detail["has_intermediate_values"]
        page = urllib.request.urlopen(url, timeout=30)
        assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        for proc in (runner, browser):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    assert browser is not None and browser.returncode is not None


def test_server_in_process_on_any_free_port(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="a", storage=url).add_trial(optuna.trial.create_trial(value=1.0))
    server = DashboardServer(url, study="a", port=0)
    assert server.host == "127.0.0.1" and server.port > 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = server.url.split("/dashboard")[0]
        assert [s["study_name"] for s in _get(f"{base}/api/studies")["study_summaries"]] == ["a"]
        assert len(_get(f"{base}/api/studies/1")["trials"]) == 1
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_targets(tmp_path, write_study, storage_url, monkeypatch):
    path = write_study("named")
    assert resolve_target(str(path), None) == (storage_url, "named")
    assert resolve_target(str(path), "sqlite:///other.db") == ("sqlite:///other.db", "named")
    assert resolve_target("quickstart", storage_url) == (storage_url, "quickstart")
    monkeypatch.setenv("HPSEARCH_STORAGE", storage_url)
    assert resolve_target(None, None) == (storage_url, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "error: no study 'nope' in {url} (studies there: a)"),
        (["--storage", "sqlite:///{tmp}/missing.db"], "error: storage: got 'sqlite:///"),
        (["a", "--port", "{busy}"], "error: cannot listen on 127.0.0.1:{busy}: "),
    ],
)
def test_mistakes_print_one_line_and_exit_2(tmp_path, args, message):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="a", storage=url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = {"url": url, "tmp": tmp_path, "busy": busy.getsockname()[1]}
        argv = ["browse", *[a.format(**fill) for a in args]]
        if "--storage" not in argv:
            argv += ["--storage", url]
        result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message.format(**fill)), result.output
    assert len(result.output.strip().splitlines()) == 1
