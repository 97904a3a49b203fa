"""The ``>>>`` examples in hpsearch's docstrings run as tests (``python -m pytest``).

Every module under ``hpsearch/`` whose source has a ``>>>`` is imported and its
examples are run with :mod:`doctest`, except the modules in :data:`NOT_RUN`. Modules
without examples are not imported (``pytest --doctest-modules`` would import all of
them: ``hpsearch.__main__`` runs the CLI on import and the sklearn engine imports
TensorFlow), so this file adds about a second.

Each module's examples run in an empty working directory holding a copy of the
repository's ``studies/``: an example may write files (``hpsearch.db``, ``exports/``)
and read ``studies/quickstart.yaml`` as a reader in the repository would.
An example may not import TensorFlow (it would mean training or building a model,
too slow for an example): marked ``# doctest: +SKIP``, such lines stay documentation.
"""

from __future__ import annotations

import doctest
import importlib
import shutil
import sys
from pathlib import Path

import pytest

import hpsearch

PACKAGE = Path(hpsearch.__file__).parent
REPO = PACKAGE.parent

# Modules whose examples are illustrations only (they need a trained study, an Optuna
# trial or an export folder), with why. Their files are being reworked elsewhere; once
# their examples run, drop them from here (test_not_run_is_up_to_date keeps this honest).
NOT_RUN = {
    "hpsearch.export": "exports a trained study (trains a Keras model)",
    "hpsearch.dashboards": "renders the dashboards of a trained study",
    "hpsearch.dashboards._schema": "reads the repository's dashboards/ folder",
    "hpsearch.dashboards._importance": "needs a study with finished trials",
    "hpsearch.dashboards._figures": "needs a study with finished trials",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_with_examples() -> list[str]:
    """hpsearch's modules whose source has a ``>>>``, found without importing them."""
    return sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py" and ">>>" in path.read_text(encoding="utf-8")
    )


@pytest.fixture
def example_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "studies", tmp_path / "studies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    return tmp_path


def run_examples(name: str) -> tuple[int, str]:
    """Run a module's examples; return (the number found, skipped ones too; doctest's
    report of failures)."""
    import optuna

    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=flags)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "Trial 0 finished" lines
    found = 0
    try:
        for test in finder.find(module, name):
            found += len(test.examples)
            runner.run(test, out=report.append)
    finally:
        optuna.logging.set_verbosity(before)
    return found, "".join(report)


@pytest.mark.parametrize("name", [n for n in modules_with_examples() if n not in NOT_RUN])
def test_examples_run(name: str, example_dir: Path) -> None:
    had_tensorflow = "tensorflow" in sys.modules
    found, failures = run_examples(name)
    assert found, f"{name} has a '>>>' but doctest found no example"
    assert not failures, f"examples of {name} failed:\n{failures}"
    if not had_tensorflow:
        assert "tensorflow" not in sys.modules, f"an example of {name} imported TensorFlow"


def test_the_public_api_has_examples() -> None:
    wanted = {
        "hpsearch",
        "hpsearch.study._file",
        "hpsearch.objectives",
        "hpsearch.card",
        "hpsearch.storage",
        "hpsearch.search",
        "hpsearch.atomic",
        "hpsearch.results",
    }
    assert wanted <= set(modules_with_examples()) - set(NOT_RUN)


def test_not_run_is_up_to_date() -> None:
    assert set(NOT_RUN) <= set(modules_with_examples())


def test_a_failing_example_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner above does fail: a module with a wrong expected output."""
    (tmp_path / "doctest_wrong_example.py").write_text(
        'def f():\n    """\n    >>> 1 + 1\n    3\n    """\n', encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found, failures = run_examples("doctest_wrong_example")
    assert found == 1
    assert "Expected:\n    3\nGot:\n    2" in failures
