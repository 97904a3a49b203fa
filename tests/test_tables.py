"""Mixed tables: a CSV with string columns and gaps, through run, best, export and a
fresh-process ``predict`` on the raw CSV (real Keras, tiny, offline)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.data._table import TableSpec

COLORS = ["red", "green", "blue"]


def _table_rows(n: int = 300, seed: int = 0) -> list[list[str]]:
    """color (categorical, gaps), size (numeric, gaps), shop (categorical, 12 values),
    noise (numeric), label: ``yes`` for red, or for any colour with size > 7."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        color = str(rng.choice(COLORS))
        size = float(rng.normal(5, 2))
        label = "yes" if color == "red" or size > 7 else "no"
        rows.append(
            [
                "NA" if rng.random() < 0.05 else color,
                "" if rng.random() < 0.1 else f"{size:.3f}",
                f"shop {rng.integers(0, 12)}",
                f"{rng.normal():.3f}",
                label,
            ]
        )
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


HEADER = ["color", "size", "shop", "noise", "label"]


def _study(root: Path, csv_name: str, **data: Any) -> Path:
    study = {
        "name": "tables",
        "storage": f"sqlite:///{root / 'h.db'}",
        "data": {"name": "csv", "path": csv_name, "label_column": "label", **data},
        "model": {"family": "mlp"},
        "space": {
            "depth": 1,
            "width": {"low": 16, "high": 32},
            "learning_rate": 0.02,
            "batch_size": 32,
            "epochs": 8,
        },
        "search": {"sampler": "random", "n_trials": 2, "seed": 3},
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tables")
    _write_csv(root / "shop.csv", HEADER, _table_rows())
    path = _study(root, "shop.csv")
    study = hpsearch.run(hpsearch.load_study_file(path), quiet=True)
    best = CliRunner().invoke(app, ["best", str(path)])
    assert best.exit_code == 0, best.output
    out = root / "out"
    result = CliRunner().invoke(app, ["export", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    return {"root": root, "path": path, "study": study, "out": out, "card": card, "best": best}


def test_kinds_and_encoding_are_fitted_on_the_training_split(tmp_path):
    _write_csv(tmp_path / "shop.csv", HEADER, _table_rows())
    ds = load_dataset(DataConfig(name="csv", path="shop.csv"), tmp_path)
    assert ds.table is not None and ds.class_names == ["no", "yes"]
    kinds = {c.name: c.kind for c in ds.table.columns}
    assert kinds == {
        "color": "categorical",
        "size": "numeric",
        "shop": "categorical",
        "noise": "numeric",
    }
    color, size, shop, _ = ds.table.columns
    assert set(color.vocabulary) == {*COLORS, ""}  # the gap is a category of its own
    assert len(shop.vocabulary) == 12 and shop.input == "shop"
    assert size.indicator and size.missing_in_train > 0
    # 3 colours + the gap + 1 OOV, 1 + indicator, 12 + 1 OOV, 1
    assert ds.input_shape == (5 + 2 + 13 + 1,)
    # standardized with the training split's observed values: mean 0, std 1 there only
    observed = ds.x_train[:, 6] == 0  # size's indicator
    assert abs(ds.x_train[observed, 5].mean()) < 1e-5
    assert abs(ds.x_train[observed, 5].std() - 1) < 1e-4
    imputed = (size.median - size.mean) / size.std  # the median, standardized
    assert np.allclose(ds.x_train[~observed, 5], imputed, atol=1e-6)
    # a cap on categories: the rarer values go to the out-of-vocabulary bucket
    capped = load_dataset(DataConfig(name="csv", path="shop.csv", max_categories=5), tmp_path)
    assert capped.table is not None
    assert [len(c.vocabulary) for c in capped.table.columns if c.kind == "categorical"] == [4, 5]


def test_excel_and_european_csvs_load_as_the_plain_one(tmp_path):
    rows = [[f"café {r[2][-1]}", *r[1:]] for r in _table_rows()]  # a non-ASCII category
    _write_csv(tmp_path / "plain.csv", HEADER, rows)
    text = (tmp_path / "plain.csv").read_text(encoding="utf-8")
    (tmp_path / "bom.csv").write_bytes(text.encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    (tmp_path / "win.csv").write_bytes(text.encode("cp1252"))  # Excel's plain "CSV"
    with open(tmp_path / "eu.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=";")  # European: ';' and decimal commas
        writer.writerow(HEADER)
        writer.writerows(
            [[c.replace(".", ",") if c[-1:].isdigit() else c for c in r] for r in rows]
        )
    plain = load_dataset(DataConfig(name="csv", path="plain.csv"), tmp_path)
    assert plain.table is not None and "café 3" in plain.table.columns[0].vocabulary
    for name in ("bom.csv", "win.csv", "eu.csv"):
        other = load_dataset(DataConfig(name="csv", path=name), tmp_path)
        assert other.table is not None, name
        assert [c.name for c in other.table.columns] == HEADER[:-1], name
        assert other.table.columns[0].vocabulary == plain.table.columns[0].vocabulary, name
        assert np.allclose(other.x_train, plain.x_train), name


def test_column_kind_overrides(tmp_path):
    rows = [[str(i % 4), f"{i * 0.5}", "a" if i % 2 else "b"] for i in range(60)]
    _write_csv(tmp_path / "t.csv", ["zone", "x", "label"], rows)
    plain = load_dataset(DataConfig(name="csv", path="t.csv"), tmp_path)
    assert plain.table is None  # all numbers, no gap: today's path
    zoned = load_dataset(DataConfig(name="csv", path="t.csv", categorical=["zone"]), tmp_path)
    assert zoned.table is not None
    assert [c.kind for c in zoned.table.columns] == ["categorical", "numeric"]
    assert sorted(zoned.table.columns[0].vocabulary) == ["0", "1", "2", "3"]


def test_run_best_and_the_card_record_the_table(exported):
    card = exported["card"]
    assert "accuracy" in exported["best"].output
    table = card["data"]["table"]
    columns = {c["name"]: c for c in table["columns"]}
    assert columns["size"]["kind"] == "numeric" and columns["size"]["indicator"] is True
    assert columns["size"]["median"] is not None and columns["size"]["missing_in_train"] > 0
    assert columns["color"]["kind"] == "categorical" and "" in columns["color"]["vocabulary"]
    assert card["model"]["input"]["name"] == "columns" and card["model"]["input"]["shape"] == [4]
    assert card["data"]["class_names"] == ["no", "yes"]
    assert card["test"]["accuracy"] >= 0.75  # the rule is learnt, not guessed
    md = (exported["out"] / "model_card.md").read_text(encoding="utf-8")
    median = f"median {columns['size']['median']:.6g}"
    assert median in md and "+ missing indicator" in md and "a category of its own" in md
    assert "imputed with" in md and "Missing values: `(empty)`, `na`" in md


def _raw_csv(path: Path) -> Path:
    """New rows: other column order, an extra column, no label, an unseen colour and
    shop, gaps of each kind."""
    header = ["id", "noise", "shop", "size", "color"]
    rows = [
        ["1", "0.1", "shop 3", "2.5", "red"],
        ["2", "-1.0", "shop 99", "8.5", "purple"],  # unseen colour and shop
        ["3", "0.3", "shop 1", "", "blue"],  # numeric gap
        ["4", "?", "shop 2", "NaN", "NA"],  # gaps everywhere
        ["5", "0.0", "shop 0", "4.0", "green"],
    ]
    return _write_csv(path, header, rows)


def _keras_inputs(rows: list[list[Any]]) -> dict[str, Any]:
    import tensorflow as tf

    color, size, shop, noise = zip(*rows, strict=True)
    return {
        "color": tf.constant([[c] for c in color]),
        "size": tf.constant([[s] for s in size], dtype=tf.float32),
        "shop": tf.constant([[s] for s in shop]),
        "noise": tf.constant([[n] for n in noise], dtype=tf.float32),
    }


def test_predict_on_the_raw_csv_in_a_fresh_process(exported, tmp_path):
    import keras

    raw = _raw_csv(tmp_path / "raw.csv")
    pred = tmp_path / "pred.csv"
    done = subprocess.run(
        [sys.executable, "-m", "hpsearch", "predict", str(exported["out"]), str(raw)]
        + ["--out", str(pred)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = pred.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "input,label,probability,no,yes" and len(lines) == 6
    got = np.array([[float(v) for v in line.split(",")[3:]] for line in lines[1:]])

    # the model in this process, fed by hand: a gap is NaN (numeric) or "" (string)
    nan = float("nan")
    model = keras.models.load_model(exported["out"] / "model.keras")
    rows = [
        ["red", 2.5, "shop 3", 0.1],
        ["purple", 8.5, "shop 99", -1.0],
        ["blue", nan, "shop 1", 0.3],
        ["", nan, "shop 2", nan],
        ["green", 4.0, "shop 0", 0.0],
    ]
    expected = model.predict(_keras_inputs(rows), verbose=0)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(got.sum(axis=1), 1, atol=1e-4)

    # the layers compute the encoding the network was trained on
    spec = TableSpec.from_dict(exported["card"]["data"]["table"])
    cells = np.array([[str(v) if v == v else "" for v in r] for r in rows], dtype=object)
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert np.allclose(inner.predict(spec.encode(cells), verbose=0), expected, atol=1e-5)


def test_savedmodel_takes_named_raw_columns(exported):
    import keras
    import tensorflow as tf

    rows = [["purple", float("nan"), "shop 4", 1.0], ["red", 6.0, "", 0.0]]
    loaded = tf.saved_model.load(str(exported["out"] / "saved_model"))
    served = loaded.serve(_keras_inputs(rows)).numpy()
    model = keras.models.load_model(exported["out"] / "model.keras")
    assert np.allclose(served, model.predict(_keras_inputs(rows), verbose=0), atol=1e-5)


def test_predict_with_labels_reports_accuracy_and_refuses_a_missing_column(exported, tmp_path):
    from hpsearch.exceptions import HpsearchError
    from hpsearch.predict import predict

    labelled = _write_csv(tmp_path / "l.csv", HEADER, _table_rows(40, seed=5))
    result = predict(exported["out"], [labelled])
    assert result.accuracy is not None and len(result.labels) == 40
    _write_csv(tmp_path / "short.csv", ["color", "size"], [["red", "1"]])
    with pytest.raises(HpsearchError, match=r"short\.csv: no column 'shop' in the header"):
        predict(exported["out"], [tmp_path / "short.csv"])


NUMERIC_FINGERPRINT = "74948c8d079c46d6"  # main before tables, on _numeric_rows()


def _numeric_rows() -> list[list[str]]:
    rng = np.random.default_rng(7)
    return [[f"{v:.4f}" for v in rng.normal(size=3)] + [str(i % 3)] for i in range(150)]


def test_an_all_numeric_csv_is_loaded_as_before(tmp_path):
    _write_csv(tmp_path / "n.csv", ["a", "b", "c", "label"], _numeric_rows())
    ds = load_dataset(DataConfig(name="csv", path="n.csv", scale="standard"), tmp_path)
    assert ds.table is None and ds.input_shape == (3,) and "table" not in ds.summary()
    assert ds.scaling["kind"] == "standard"
    assert ds.fingerprint == NUMERIC_FINGERPRINT


BAD = [
    ("empty column", ["color", "size", "label"], [["red", "", "a"], ["blue", "NA", "b"]] * 20,
     r"column 'size' has no value"),
    ("label gaps", ["color", "size", "label"], [["red", "1", "a"], ["blue", "2", ""]] * 20,
     r"the label column 'label' has 20 missing value\(s\) \(first on line 3\)"),
    ("only the label", ["label"], [["a"], ["b"]] * 20, r"only the label column"),
    ("no header", ["1.5", "red", "0"], [["2.5", "blue", "1"]] * 40,
     r"label column not in the CSV header .*the first line holds a number: it must name"),
    ("named twice", ["color", "color", "label"], [["red", "blue", "a"], ["x", "y", "b"]] * 20,
     r"column 'color' appears twice in the header"),
    ("ragged", ["color", "size", "label"], [["red", "1", "a"]] * 20 + [["blue", "b"]],
     r"line 22 has 2 cells, the header 3"),
]  # fmt: skip


def test_what_no_check_foresaw_in_the_data_is_still_one_line(tmp_path, monkeypatch):
    import hpsearch.data._table as table

    def broken(path: Path) -> str:
        raise LookupError("a codec no one has")

    monkeypatch.setattr(table, "csv_text", broken)
    _write_csv(tmp_path / "odd.csv", HEADER, _table_rows(40))
    path = _study(tmp_path, "odd.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: data.path: got 'odd.csv'; cannot load the data: ")
    assert "unexpected LookupError: a codec no one has (hpsearch --debug" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(("case", "header", "rows", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_tables_are_one_line_and_write_nothing(tmp_path, case, header, rows, message):
    _write_csv(tmp_path / "bad.csv", header, rows)
    path = _study(tmp_path, "bad.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, lines[:5]
    assert lines[0].startswith("error: ") and "study.yaml" in lines[0], lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no database, no artifacts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"numeric": ["color"]}, r"'color' is listed in data.numeric but line 3 has 'green'"),
        ({"categorical": ["colour"]}, r"data.categorical: no column 'colour'"),
        ({"scale": "unit"}, r"data.scale: got 'unit'; not for a table"),
    ],
)
def test_bad_column_kinds_are_one_line(tmp_path, data, message):
    _write_csv(tmp_path / "shop.csv", HEADER, _table_rows(60))
    path = _study(tmp_path, "shop.csv", **data)
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert re.search(message, result.stderr), result.stderr


def test_column_kinds_are_for_csv_only(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("data: {name: digits, categorical: [a]}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "data.categorical: got ['a']; column kinds are for data.name: csv only" in result.stderr


def test_onnx_refuses_a_table_and_writes_nothing(exported, tmp_path, monkeypatch):
    import hpsearch.export
    from hpsearch.exceptions import HpsearchError

    monkeypatch.setattr(hpsearch.export, "check_onnx", lambda: None)  # as if installed
    out = tmp_path / "onnx"
    with pytest.raises(HpsearchError, match="ONNX export does not take a table"):
        hpsearch.export.export_trial(exported["path"], out=out, formats="onnx")
    assert not out.exists() and not list(tmp_path.iterdir())
