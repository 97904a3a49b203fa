"""Shared helpers for the benchmark scripts: machine facts and BENCHMARKS.md sections.

Each script owns one section of BENCHMARKS.md, delimited by HTML comments, and
replaces it with its latest table, the command that made it, the date, the machine
and the library versions.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpsearch import StudyFile

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
PACKAGES = ("tensorflow-cpu", "keras", "optuna", "scikeras", "scikit-learn", "numpy")


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(out)


def command() -> str:
    return "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]
    )


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) section ``name`` of BENCHMARKS.md."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"{begin}\n## {title}\n\n"
        f"Command: `{command()}`  \nDate: {stamp}  \nMachine: {machine()}  \n"
        f"Libraries: {versions()}\n\n{body.strip()}\n{end}"
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def snapshot(fig: Any, png: Path, width: int = 1000, height: int = 520) -> bool:
    """Save a plotly figure as a PNG through headless Chromium, if there is one.

    The figure is written to a static, self-contained HTML page (no tool bar) and
    Chromium takes a screenshot of it, offline. Returns whether ``png`` was written;
    without Chromium (or kaleido, which hpsearch does not install) the HTML page is
    what a benchmark leaves.
    """
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    with tempfile.TemporaryDirectory(prefix="hpsearch-snapshot-") as tmp:
        page = Path(tmp) / "figure.html"
        fig.write_html(
            page,
            include_plotlyjs=True,
            config={"staticPlot": True},
            default_width=f"{width}px",
            default_height=f"{height}px",
        )
        png.unlink(missing_ok=True)
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={width + 16},{height + 16}",
            f"--screenshot={png}",
        ]
        try:
            subprocess.run(
                [browser, *flags, page.as_uri()], capture_output=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return png.exists() and png.stat().st_size > 0


# ---------------------------------------------------------------- study helpers
# The search spaces of the time-to-accuracy benchmark (also used by the
# pruning benchmark): hpsearch, KerasTuner and scikit-learn all search these.
MLP_SPACE: dict[str, Any] = {
    "depth": {"low": 1, "high": 4},
    "width": {"low": 32, "high": 1024, "log": True, "per_layer": True},
    "dropout": {"low": 0.0, "high": 0.5},
    "optimizer": {"choices": ["sgd", "rmsprop", "adam", "adamax", "nadam"]},
    "learning_rate": {"low": 1.0e-4, "high": 1.0e-1, "log": True},
    "momentum": 0.9,
    "batch_size": {"choices": [64, 128, 256]},
    "epochs": 20,
    "patience": 3,
    "activation": "relu",
}
# The CNN space: filters, kernel size, blocks, dense width, dropout, optimizer,
# learning rate. Filters stop at 64 and batches at 64 (as studies/mnist_cnn.yaml): on 2
# cores a first block of 128 filters or batches of 32 made single trials take 10 minutes,
# so that the 2026-11-23 run of 1,200 s was two to four trials per method.
CNN_SPACE: dict[str, Any] = {
    "blocks": {"low": 1, "high": 3},
    "filters": {"low": 8, "high": 64, "log": True, "per_layer": True},
    "kernel_size": {"choices": [3, 5]},
    "padding": "same",
    "pooling": "max",
    "pool_size": 2,
    "dense_width": {"low": 32, "high": 512, "log": True},
    "dropout": {"low": 0.0, "high": 0.5},
    "optimizer": {"choices": ["sgd", "rmsprop", "adam", "adamax", "nadam"]},
    "learning_rate": {"low": 1.0e-4, "high": 1.0e-1, "log": True},
    "momentum": 0.9,
    "batch_size": {"choices": [64, 128]},
    "epochs": 10,
    "patience": 3,
    "activation": "relu",
}
# The CNN space plus the three levers that took studies/mnist_cnn.yaml past 99.4 % test
# (batch normalization, shifted training images, a cosine learning rate), searched alike
# by every method: the builders are hpsearch's, so KerasTuner and scikit-learn build the
# same networks.
CNN_PLUS_SPACE: dict[str, Any] = {
    **CNN_SPACE,
    "batch_norm": {"choices": [False, True]},
    "augment_translate": {"low": 0.0, "high": 0.1},
    "lr_schedule": {"choices": ["constant", "cosine"]},
}


def data_section(quick: bool, mnist: str, validation: float = 0.1) -> dict[str, Any]:
    """The ``data`` section: MNIST from a local file, or digits for ``--quick``."""
    if quick:
        return {"name": "digits", "validation": 0.2, "seed": 0}
    return {
        "name": "mnist",
        "path": str(Path(mnist).resolve()),
        "validation": validation,
        "seed": 0,
    }


def run_stamp() -> str:
    """A UTC time stamp for study names, so that every benchmark run starts afresh."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")


def study_file(raw: dict[str, Any], folder: Path, storage: str) -> StudyFile:
    """Write ``raw`` as ``folder/<name>.yaml`` and load it the way ``hpsearch run`` does."""
    import yaml

    import hpsearch

    path = Path(folder) / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return hpsearch.load_study_file(path, storage=storage)


def sqlite_in(folder: str | Path, name: str = "bench.db") -> str:
    return f"sqlite:///{Path(folder).resolve() / name}"


def pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def warm_up(raw: dict[str, Any], folder: Path, storage: str) -> Any:
    """Run a one-trial, one-epoch copy of study ``raw`` (quietly, named ``<name>_warmup``)
    so that the first timed run does not pay TensorFlow's and hpsearch's first-use costs;
    return the study's data set (loaded once per process and cached)."""
    import hpsearch
    from hpsearch.data import load_dataset

    space = {**raw.get("space", {}), "epochs": 1}
    search = {"sampler": "random", "pruner": "none", "n_trials": 1, "seed": 0}
    sf = study_file(
        {**raw, "name": f"{raw['name']}_warmup", "space": space, "search": search}, folder, storage
    )
    hpsearch.run(sf, quiet=True)
    return load_dataset(sf.config.data, sf.base_dir)
