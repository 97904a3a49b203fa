"""Reading, validating or building a study file changes nothing in the process: no
patch of Optuna, no ``sys.path`` entry, no sampler or storage, no log level. Those
happen when a run opens (and a run puts the log levels back when it ends).

Checked in a fresh interpreter, since an earlier test in this process may have opened
a run already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

PROBE = textwrap.dedent(
    """
    import json, logging, sys

    import optuna
    from optuna.samplers._tpe import _truncnorm

    def snapshot():
        modules = {
            name: {k: id(v) for k, v in vars(mod).items()}
            for name, mod in list(sys.modules.items())
            if name.startswith("optuna") and mod is not None
        }
        loggers = {
            name: logging.getLogger(name).level for name in ("", "optuna", "tensorflow", "absl")
        }
        return {
            "sys_path": list(sys.path),
            "log_ndtr": id(_truncnorm._log_ndtr),
            "verbosity": optuna.logging.get_verbosity(),
            "loggers": loggers,
            "modules": modules,
        }

    before = snapshot()
    {action}
    after = snapshot()
    changed = [
        f"{name}.{key}"
        for name, attrs in before["modules"].items()
        for key, ident in attrs.items()
        if after["modules"].get(name, {}).get(key) != ident
    ]
    print(json.dumps({
        "sys_path": [before["sys_path"], after["sys_path"]],
        "log_ndtr": before["log_ndtr"] == after["log_ndtr"],
        "verbosity": [before["verbosity"], after["verbosity"]],
        "loggers": [before["loggers"], after["loggers"]],
        "changed": changed,
        "tensorflow": "tensorflow" in sys.modules,
    }))
    """
)


def _study_with_user_builder(tmp_path: Path) -> Path:
    (tmp_path / "side_builder.py").write_text(
        "def build(params, input_shape, num_classes):\n    raise RuntimeError('not called')\n",
        encoding="utf-8",
    )
    path = tmp_path / "s.yaml"
    study = {
        "data": {"name": "digits"},
        "model": {"family": "side_builder:build"},
        "space": {"units": {"low": 4, "high": 64}, "epochs": 2},
        "search": {"sampler": "tpe", "n_trials": 3},
        "storage": f"sqlite:///{tmp_path / 'never.db'}",
    }
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _probe(action: str, cwd: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{action}", action)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_unchanged(result: dict) -> None:
    assert result["sys_path"][0] == result["sys_path"][1]
    assert result["log_ndtr"], "Optuna's TPE was patched"
    assert result["verbosity"][0] == result["verbosity"][1]
    assert result["loggers"][0] == result["loggers"][1]
    assert result["changed"] == []
    assert not result["tensorflow"]


def test_validate_changes_nothing(tmp_path):
    path = _study_with_user_builder(tmp_path)
    action = (
        "from hpsearch.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['validate', {str(path)!r}])\n"
        "assert r.exit_code == 0, r.output"
    )
    _assert_unchanged(_probe(action, tmp_path))
    assert not (tmp_path / "never.db").exists()


def test_loading_a_study_file_changes_nothing(tmp_path):
    path = _study_with_user_builder(tmp_path)
    action = (
        "import hpsearch\n"
        f"sf = hpsearch.load_study_file({str(path)!r})\n"
        "assert sf.n_trials == 3 and sf.space.searched"
    )
    _assert_unchanged(_probe(action, tmp_path))
