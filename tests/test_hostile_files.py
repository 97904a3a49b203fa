"""Hostile input: whatever file or ``--set`` value a user can write gives one line.

Deep nesting, alias bombs, huge files, binary data, odd tags, huge numbers, files
that are not files: ``validate``, ``run`` and ``dashboard`` print one line naming
the file (or ``--set``) on stderr, exit with code 2 and write nothing. Fast and
offline: everything here is refused before a model is built.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hpsearch.cli import app
from hpsearch.config._yaml import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from hpsearch.exceptions import ConfigError
from hpsearch.study import load_study_file

REPO = Path(__file__).resolve().parent.parent
BUDGET = "search: {n_trials: 3}\n"
NAME = "study.yaml"


def _bomb(levels: int = 7, width: int = 10) -> str:
    """A flow list whose first items anchor lists of ``width`` aliases to the one
    before: ``width ** levels`` values once expanded, a few hundred bytes written."""
    items = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        items.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(items) + "]"


def _deep_by_aliases() -> str:
    """Every anchor nests 60 levels and holds the one before: 180 levels expanded."""
    lines = ["a0: &a0 " + "[" * 60 + "x" + "]" * 60]
    for i in range(1, 4):
        lines.append(f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60)
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 24) -> str:
    """Merge keys doubling at every level: 2 ** levels keys once merged."""
    lines = ["m0: &m0 {a: 1}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}")
    return "\n".join(lines) + "\n"


# (id, the file's bytes, or a function that makes the file at a path)
Content = bytes | str | Callable[[Path], None]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _device(path: Path) -> None:
    path.symlink_to(os.devnull)


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.yaml")


def _missing(path: Path) -> None:
    pass


def _unreadable(path: Path) -> None:
    path.write_text(BUDGET, encoding="utf-8")
    path.chmod(0)


def _huge(path: Path) -> None:
    """50 MB of well-formed YAML."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("search:\n  enqueue:\n")
        line = "    - {depth: 2, width: 128, dropout: 0.2, activation: relu}\n"
        fh.write(line * (50_000_000 // len(line)))


def _just_too_big(path: Path) -> None:
    path.write_bytes(BUDGET.encode() + b"#" * (MAX_FILE_BYTES - len(BUDGET) + 1))


HOSTILE: list[tuple[str, Content]] = [
    # nesting
    ("nested-5000-lists", "[" * 5000),
    ("nested-5000-lists-closed", "[" * 5000 + "]" * 5000),
    ("nested-5000-mappings", "{a: " * 5000 + "1" + "}" * 5000),
    ("nested-block-mappings", "".join(" " * i + "a:\n" for i in range(MAX_DEPTH + 5))),
    ("nested-under-a-real-key", "search: {n_trials: 3, sampler_options: {a: " + "[" * 3000 + "}}"),
    ("nested-by-aliases", _deep_by_aliases()),
    # aliases
    ("alias-bomb", f"lol: {_bomb(9)}\n"),
    ("alias-bomb-in-enqueue", "search: {n_trials: 3, enqueue: [{depth: " + _bomb() + "}]}\n"),
    ("alias-bomb-in-sampler-options",
     "search: {n_trials: 3, sampler_options: {x: " + _bomb() + "}}\n"),
    ("merge-key-bomb", _merge_bomb()),
    ("recursive-alias", "a: &a [*a]\n"),
    ("recursive-alias-in-space", "space: {optimizer: {choices: &c [adam, *c]}}\n" + BUDGET),
    ("recursive-merge", "a: &a {<<: *a}\n"),
    ("undefined-alias", "a: *nowhere\n"),
    # size
    ("huge-file", _huge),
    ("just-over-the-size-cap", _just_too_big),
    # bytes
    ("random-bytes", random.Random(0).randbytes(4096)),
    ("nul-bytes", BUDGET.encode() + b"\x00\x00\x00"),
    ("invalid-utf8", b"name: caf\xe9\n" + BUDGET.encode()),
    ("utf16-with-bom", BUDGET.encode("utf-16")),
    ("utf32-with-bom", BUDGET.encode("utf-32")),
    ("lone-surrogate-escape", 'name: "\\ud800"\n' + BUDGET),
    ("control-character", "name: a\x07b\n" + BUDGET),
    # shape
    ("empty-file", b""),
    ("only-a-comment", "# nothing here\n"),
    ("top-level-scalar", "hello\n"),
    ("top-level-list", "- data\n- model\n"),
    ("top-level-integer", "42\n"),
    ("two-documents", BUDGET + "---\n" + BUDGET),
    ("malformed", "search: {n_trials: 3\n"),
    # numbers
    ("integer-10000-digits", "search: {n_trials: " + "9" * 10_000 + "}\n"),
    ("hex-integer-5000-digits", "search: {n_trials: 3, seed: 0x" + "f" * 5000 + "}\n"),
    ("base-60-integer", "search: {n_trials: 3, seed: 1" + ":59" * 5000 + "}\n"),
    ("huge-float", "search: {n_trials: 3, timeout: 1.0e+999}\n"),
    ("nan", "search: {n_trials: 3, timeout: .nan}\n"),
    ("nan-in-a-range", "space: {dropout: {low: .nan, high: 0.5}}\n" + BUDGET),
    ("huge-integer-range-in-a-grid", "space: {width: {low: 1, high: 1000000000000}}\n"
     "search: {sampler: grid}\n"),
    ("huge-grid", "space: {width: {choices: [" + ", ".join(map(str, range(1, 500))) + "]},"
     " depth: {low: 1, high: 64}, batch_size: {low: 1, high: 512}}\nsearch: {sampler: grid}\n"),
    ("float-grid-of-1e300-steps", "space: {dropout: {low: 0.0, high: 0.5, step: 1.0e-300}}\n"
     "search: {sampler: grid}\n"),
    ("huge-enqueued-depth", "space: {depth: {low: 1, high: 3}, width: {low: 8, high: 64, "
     "per_layer: true}}\nsearch: {n_trials: 3, enqueue: [{width: 8, depth: 1000000000000}]}\n"),
    # tags
    ("python-object-tag", "!!python/object/apply:os.system [echo hi]\n"),
    ("python-name-tag", "search: !!python/name:os.system\n"),
    ("binary-tag", "search: {n_trials: !!binary AAE=}\n"),
    ("binary-in-sampler-options",
     "search: {n_trials: 3, sampler_options: {gamma: !!binary /w==}}\n"),
    ("timestamp-tag", "search: {n_trials: !!timestamp 2024-01-01}\n"),
    ("bad-timestamp", "name: !!timestamp 2024-13-45\n" + BUDGET),
    ("set-tag", "search: {n_trials: 3, sampler_options: !!set {a, b}}\n"),
    ("set-in-pruner-options", "search: {n_trials: 3, pruner_options: {x: !!set {a}}}\n"),
    ("omap-tag", "search: !!omap [{n_trials: 3}, {n_trials: 4}]\n"),
    ("unknown-tag", "search: !mytag {n_trials: 3}\n"),
    # keys
    ("integer-key", "1: 2\n" + BUDGET),
    ("null-key", "null: x\n" + BUDGET),
    ("date-key", "search: {n_trials: 3, enqueue: [{2024-01-01: 1}]}\n"),
    ("unhashable-key", "? [a, b]\n: 1\n"),
    ("non-string-key-in-space", "space: {1: {low: 1, high: 2}}\n" + BUDGET),
    # not a file
    ("directory", _directory),
    ("named-pipe", _fifo),
    ("device", _device),
    ("missing", _missing),
    ("dangling-symlink", _dangling),
    ("unreadable", _unreadable),
]  # fmt: skip


def _make(path: Path, content: Content) -> None:
    if callable(content):
        content(path)
    elif isinstance(content, str):
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
    else:
        path.write_bytes(content)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory; the default storage points into it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'default.db'}")
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def _skip_unless_possible(case: str) -> None:
    if case == "unreadable" and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads any file")
    if case == "named-pipe" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def _one_error_line(result, names: str) -> str:
    """The single stderr line of a refused command (checked thoroughly)."""
    assert result.exit_code == 2, (result.exit_code, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    line = lines[0]
    assert line.startswith(f"error: {names}: "), line[:300]
    assert len(line) < 1000, f"{len(line)} characters: {line[:300]}"
    return line


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("case", "content"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_study_file(workdir, command, case, content):
    _skip_unless_possible(case)
    _make(workdir / NAME, content)
    before = _files(workdir)
    db = workdir / "h.db"

    args = [command, NAME]
    if command == "run":
        args += ["--storage", f"sqlite:///{db}"]
    result = CliRunner().invoke(app, args)

    _one_error_line(result, NAME)
    assert not db.exists()
    assert not (workdir / "default.db").exists()
    assert _files(workdir) == before  # nothing written: no database, journal or artifacts


@pytest.fixture(params=["libyaml", "python"])
def loader(request, monkeypatch):
    """Either loader: libyaml's parser under the limited composer, or PyYAML's own."""
    from hpsearch.config import _yaml

    if request.param == "python":
        monkeypatch.setattr(_yaml, "HardenedLoader", _yaml.PureHardenedLoader)
    elif _yaml.HardenedLoader is _yaml.PureHardenedLoader:
        pytest.skip("PyYAML without libyaml")
    return request.param


@pytest.mark.parametrize(("case", "content"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_study_file_from_the_api(workdir, loader, case, content):
    _skip_unless_possible(case)
    _make(workdir / NAME, content)
    with pytest.raises(ConfigError) as info:
        load_study_file(NAME)
    assert info.value.source == NAME
    assert "--debug shows the traceback" not in str(info.value)  # refused, not by the net


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("nested-5000-lists", r"^line 1, column 101: nested deeper than 100 levels"),
        ("nested-by-aliases", r"nested deeper than 100 levels once aliases are expanded"),
        ("alias-bomb", r"more than 200,000 values once aliases are expanded"),
        ("merge-key-bomb", r"more than 200,000 values once aliases are expanded"),
        ("recursive-alias", r"^line 1, column 8: recursive alias \*a"),
        ("huge-file", r"^the file is 5\d,\d{3},\d{3} bytes; a study file may have up to 1 MiB"),
        ("random-bytes", r"(NUL byte|not UTF-8)"),
        ("utf16-with-bom", r"UTF-16 text .*save it as UTF-8"),
        # PyYAML's own parser lets the escape through, libyaml refuses it
        ("lone-surrogate-escape", r"('\\ud800' is not a character|invalid Unicode character)"),
        ("integer-10000-digits", r"an integer of 10,000 digits; the limit is 100"),
        ("top-level-list", r"a study file must be a mapping of keys"),
        ("malformed", r"malformed YAML"),
        ("python-object-tag", r"malformed YAML: could not determine a constructor"),
        ("huge-integer-range-in-a-grid", r"a grid of 1,000,000,000,000 points; a grid search"),
        ("huge-enqueued-depth", r"search\.enqueue\[0\]\.depth: got 1000000000000; allowed"),
        ("set-tag", r"search\.sampler_options: .*valid dictionary"),
        ("integer-key", r"got 1; keys must be strings"),
        ("directory", r"cannot read the study file: it is a directory"),
        ("named-pipe", r"cannot read the study file: it is a named pipe, not a file"),
        ("device", r"cannot read the study file: it is a device, not a file"),
        ("missing", r"^study file not found$"),
        ("nan", r"search\.timeout: got nan; input should be a finite number"),
    ],
)
def test_hostile_study_file_messages(workdir, loader, case, pattern):
    _skip_unless_possible(case)
    _make(workdir / NAME, dict(HOSTILE)[case])
    with pytest.raises(ConfigError) as info:
        load_study_file(NAME)
    assert info.value.source == NAME
    assert re.search(pattern, str(info.value).removeprefix(f"{NAME}: ")), str(info.value)


def test_what_the_caps_leave_room_for_is_read(workdir):
    """Nesting just under the cap, a long enqueue list, aliases that expand a little."""
    nested = "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    from hpsearch.config._yaml import parse_yaml

    assert parse_yaml(f"a: {nested}") == {"a": eval(nested)}
    trial = "{depth: 2, width: 128, dropout: 0.2, activation: relu, optimizer: adam}"
    (workdir / NAME).write_text(
        "base: &base {depth: 2, width: 128, dropout: 0.2}\n"
        "space: {depth: {low: 1, high: 3}, width: {low: 16, high: 256},"
        " dropout: {low: 0.0, high: 0.5}, activation: {choices: [relu, tanh]},"
        " optimizer: {choices: [adam, sgd]}}\n"
        "search:\n  n_trials: 3\n  enqueue:\n"
        + "    - {<<: *base, activation: tanh, optimizer: sgd}\n" * 50
        + f"    - {trial}\n" * 1000,
        encoding="utf-8",
    )
    raw = parse_yaml((workdir / NAME).read_text(encoding="utf-8"))
    raw.pop("base")
    raw["name"] = "roomy"
    from hpsearch.study import study_from_dict

    study = study_from_dict(raw)
    assert len(study.config.search.enqueue) == 1050
    assert study.config.search.enqueue[0] == {
        "depth": 2, "width": 128, "dropout": 0.2, "activation": "tanh", "optimizer": "sgd"
    }  # fmt: skip


def test_too_many_values_are_refused_while_composing(workdir, monkeypatch):
    """A long flat list stops at the cap, before the rest of the file is parsed
    (the cap itself is lowered here: 200,000 values take seconds to parse)."""
    from hpsearch.config import _yaml

    monkeypatch.setattr(_yaml, "MAX_NODES", 1000)
    (workdir / NAME).write_text(
        "search: {n_trials: 3, enqueue: [" + "1, " * 1500 + "[[[[[[[[", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["validate", NAME])
    line = _one_error_line(result, NAME)
    assert re.match(rf"error: {NAME}: line 1, column \d+: more than 1,000 values, the limit", line)
    assert MAX_NODES == 200_000


# ------------------------------------------------------------------------------ --set
HOSTILE_VALUES = [  # (id, the --set item, what the error names)
    ("nested-5000-lists", "search.sampler_options=" + "[" * 5000, "--set"),
    ("nested-5000-mappings", "search.sampler_options=" + "{a: " * 5000, "--set"),
    ("alias-bomb", "search.enqueue=[{depth: " + _bomb() + "}]", "--set"),
    ("alias-bomb-in-sampler-options", "search.sampler_options={x: " + _bomb() + "}", "--set"),
    ("recursive-alias", "search.sampler_options={x: &a [*a]}", "--set"),
    ("integer-10000-digits", "search.n_trials=" + "9" * 10_000, "--set"),
    ("hex-integer", "search.seed=0x" + "f" * 5000, "--set"),
    ("not-utf8-argument", "name=caf\udce9", "--set"),  # what Python makes of byte 0xe9
    ("key-path-5000-parts", "search.sampler_options." + ".".join(["a"] * 5000) + "=1", "--set"),
    ("no-equals-sign", "search", "--set"),
    ("nan", "search.timeout=.nan", "search.timeout: got nan"),
    ("huge-float", "search.timeout=1.0e+999", "search.timeout: got inf"),
    ("binary", "search.sampler_options={gamma: !!binary /w==}", "search.sampler_options.gamma"),
    ("set", "search.pruner_options=!!set {a}", "search.pruner_options"),
    ("index-with-5000-digits", "objective." + "9" * 5000 + "=1", "objective.999"),
    ("unicode-digit-index", "objective.\u00b2=1", "objective.\u00b2: list index out of range"),
    ("non-string-key", "search.sampler_options={1: 2}", "search.sampler_options: got 1"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("case", "item", "names"), HOSTILE_VALUES, ids=[c[0] for c in HOSTILE_VALUES]
)
def test_hostile_set_value(workdir, command, case, item, names):
    (workdir / NAME).write_text("objective: [val_accuracy]\n" + BUDGET, encoding="utf-8")
    before = _files(workdir)
    db = workdir / "h.db"
    args = [command, NAME, "--set", item]
    if command == "run":
        args += ["--storage", f"sqlite:///{db}"]

    result = CliRunner().invoke(app, args)

    line = _one_error_line(result, NAME)
    assert line.startswith(f"error: {NAME}: {names}"), line[:300]
    assert not db.exists()
    assert _files(workdir) == before


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("search.sampler_options=" + "[" * 5000, r"^--set: got '.*; line 1, column 101: nested"),
        ("search.enqueue=[{depth: " + _bomb() + "}]", r"^--set: got .*once aliases are expanded"),
        ("search.n_trials=" + "9" * 10_000, r"^--set: got .*an integer of 10,000 digits"),
        ("a." * 200 + "b=1", r"^--set: got .*a key path of 201 parts; the limit is 100"),
        ("search.seed={x: 1", r"^search\.seed: got '\{x: 1'; input should be a valid integer"),
    ],
)
def test_hostile_set_value_messages(workdir, item, pattern):
    (workdir / NAME).write_text(BUDGET, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_study_file(NAME, [item])
    message = str(info.value)
    assert message.startswith(f"{NAME}: ")
    assert re.search(pattern, message.removeprefix(f"{NAME}: ")), message


# ------------------------------------------------------------------------- dashboards
DASHBOARD_ONLY = [
    ("nul-in-a-study-path", 'studies: ["a\\0.yaml"]\n'),
    ("binary-title", "studies: [a]\ntitle: !!binary /w==\n"),
    ("non-string-group", "studies: [a]\ngroups: {1: {depth: 1}}\n"),
    ("non-string-group-key", "studies: [a]\ngroups: {g: {2024-01-01: 1}}\n"),
    ("nan-group-value", "studies: [a]\ngroups: {g: {depth: .nan}}\nplots: [groups]\n"),
    ("set-as-a-study", "studies: [!!set {a, b}]\n"),
    ("recursive-studies", "studies: &s [a, *s]\n"),
    ("alias-bomb-in-groups", "studies: [a]\ngroups: {g: {depth: " + _bomb() + "}}\n"),
    ("deep-label", "studies: [{study: a, label: " + "[" * 3000 + "}]\n"),
    ("huge-label", "studies: [{study: a, label: " + "9" * 10_000 + "}]\n"),
]


@pytest.mark.parametrize(
    ("case", "content"), HOSTILE + DASHBOARD_ONLY, ids=[c[0] for c in HOSTILE + DASHBOARD_ONLY]
)
def test_hostile_dashboard_definition(workdir, case, content):
    _skip_unless_possible(case)
    _make(workdir / "board.yaml", content)
    out = workdir / "pages"
    before = _files(workdir)

    result = CliRunner().invoke(app, ["dashboard", "board.yaml", "--out", str(out)])

    _one_error_line(result, "board.yaml")
    assert not out.exists()
    assert _files(workdir) == before


@pytest.mark.parametrize(
    ("case", "content"), HOSTILE + DASHBOARD_ONLY, ids=[c[0] for c in HOSTILE + DASHBOARD_ONLY]
)
def test_hostile_dashboard_definition_from_the_api(workdir, case, content):
    from hpsearch.dashboards import is_dashboard_file, load_dashboard_file

    _skip_unless_possible(case)
    _make(workdir / "board.yaml", content)
    is_dashboard_file("board.yaml")  # a bool, never an exception
    with pytest.raises(ConfigError) as info:
        load_dashboard_file("board.yaml")
    assert info.value.source == "board.yaml"
    assert "--debug shows the traceback" not in str(info.value)


# ------------------------------------------------------------------- a real process
def test_the_real_command_prints_one_line_on_stderr(tmp_path):
    (tmp_path / "deep.yaml").write_text(
        "search: {n_trials: 3, enqueue: [{depth: " + _bomb() + "}]}\n" + "[" * 5000,
        encoding="utf-8",
    )
    (tmp_path / "nested.yaml").write_text("[" * 5000, encoding="utf-8")
    env = {**os.environ, "HPSEARCH_STORAGE": f"sqlite:///{tmp_path / 'h.db'}"}
    for name in ("deep.yaml", "nested.yaml"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "hpsearch",
                "run",
                name,
                "--storage",
                f"sqlite:///{tmp_path}/r.db",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, lines[:5]
        assert lines[0].startswith(f"error: {name}: line "), lines[0]
    assert not (tmp_path / "h.db").exists() and not (tmp_path / "r.db").exists()
    # --debug shows the traceback
    proc = subprocess.run(
        [sys.executable, "-m", "hpsearch", "--debug", "validate", "nested.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "nested deeper than 100 levels" in proc.stderr
