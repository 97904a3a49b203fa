"""Data from the user: image folders, Python loader functions and arrays from the API.

Real files written here (images made from scikit-learn's digits, a loader module), real
Keras training (tiny models, a few epochs), export and ``predict`` in a fresh process.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import hpsearch
from hpsearch.cli import app
from hpsearch.config._schema import DataConfig
from hpsearch.data import load_dataset
from hpsearch.study import StudyMeta

NAMES = {0: "zero", 1: "one", 2: "two"}


# ------------------------------------------------------------------ image files
def _pixels(img: np.ndarray) -> np.ndarray:
    return (img * 15.9).clip(0, 255).astype("uint8")  # digits' 0..16 as 0..254


def _write_bmp(path: Path, grey: np.ndarray) -> None:
    """A 24-bit uncompressed BMP (TensorFlow reads it; nothing here writes BMP)."""
    height, width = grey.shape
    row = width * 3
    pad = (4 - row % 4) % 4
    body = b"".join(
        np.repeat(grey[y][:, None], 3, axis=1).tobytes() + b"\0" * pad
        for y in reversed(range(height))
    )
    header = b"BM" + struct.pack("<IHHI", 54 + len(body), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    path.write_bytes(header + info + body)


def _write_image(path: Path, grey: np.ndarray, scale: int = 1) -> None:
    import tensorflow as tf

    grey = np.kron(grey, np.ones((scale, scale), dtype="uint8"))
    if path.suffix == ".bmp":
        _write_bmp(path, grey)
    elif path.suffix == ".jpg":
        path.write_bytes(tf.io.encode_jpeg(np.repeat(grey[..., None], 3, -1), quality=95).numpy())
    else:
        path.write_bytes(tf.io.encode_png(grey[..., None]).numpy())


def image_folder(root: Path, per_class: int = 50, start: int = 0) -> Path:
    """Digits 0, 1, 2 as ``root/zero/*.png`` ...: PNG mostly, some JPEG and BMP."""
    digits = load_digits()
    count = dict.fromkeys(NAMES, 0)
    for i in range(start, len(digits.target)):
        y = int(digits.target[i])
        if y not in NAMES or count[y] >= per_class:
            continue
        suffix = ".jpg" if i % 9 == 0 else ".bmp" if i % 9 == 1 else ".png"
        folder = root / NAMES[y]
        folder.mkdir(parents=True, exist_ok=True)
        _write_image(folder / f"d{i}{suffix}", _pixels(digits.images[i]))
        count[y] += 1
    return root


def _study(tmp_path: Path, data: dict[str, Any], **extra: Any) -> Path:
    study = {
        "name": "sources",
        "data": data,
        "model": {"family": "mlp"},
        "space": {
            "depth": 1,
            "width": 64,
            "learning_rate": 0.01,
            "batch_size": 32,
            "epochs": 8,
        },
        "search": {"sampler": "random", "n_trials": 1, "seed": 0},
        "storage": f"sqlite:///{tmp_path / 'runs.db'}",
        **extra,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _refused(args: list[str], tmp_path: Path) -> str:
    """Run the CLI, expecting one line and exit code 2 with no database written."""
    done = CliRunner().invoke(app, args)
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.exit_code == 2, done.output
    assert len(lines) == 1, done.output
    assert not (tmp_path / "runs.db").exists()
    return lines[0]


# ------------------------------------------------------------------ image folders
@pytest.mark.slow
def test_an_image_folder_runs_exports_and_predicts_its_class_names(tmp_path):
    image_folder(tmp_path / "train", per_class=50)
    study = _study(
        tmp_path, {"name": "images", "path": "train", "color_mode": "grayscale", "seed": 1}
    )
    hpsearch.run(str(study), quiet=True)
    result = hpsearch.export_trial(str(study), out=tmp_path / "export")
    card = result.card
    assert card.data.class_names == ["one", "two", "zero"]  # sorted folder names
    assert card.data.input_shape == [8, 8, 1]
    assert card.test.accuracy >= 0.8
    # new images, never seen, 2x larger than training's: predict resizes them as training would
    new = tmp_path / "new"
    new.mkdir()
    digits = load_digits()
    truth = {}
    for i in range(1500, 1797):
        y = int(digits.target[i])
        if y in NAMES and len(truth) < 15:
            suffix = ".jpg" if len(truth) % 5 == 0 else ".png"
            _write_image(new / f"n{i}{suffix}", _pixels(digits.images[i]), scale=2)
            truth[f"n{i}{suffix}"] = NAMES[y]
    done = subprocess.run(
        [sys.executable, "-m", "hpsearch", "predict", str(tmp_path / "export"), str(new)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    rows = [line.split(",") for line in done.stdout.splitlines() if line.count(",") == 2]
    answers = {name: label for name, label, _ in rows[1:]}
    assert set(answers) == set(truth)
    assert set(answers.values()) <= set(NAMES.values())
    right = sum(answers[k] == v for k, v in truth.items())
    assert right >= 12, (answers, truth)
    # a folder of class sub-folders: labelled by them, so the accuracy is reported
    from hpsearch.predict import predict

    held_out = predict(tmp_path / "export", [image_folder(tmp_path / "held", 10, start=1200)])
    assert held_out.names[0].startswith("one/") and held_out.true_labels[0] == "one"
    assert len(held_out.labels) == 30 and held_out.accuracy >= 0.8


def test_color_mode_and_image_size_shape_the_inputs(tmp_path):
    image_folder(tmp_path / "imgs", per_class=6)
    grey = load_dataset(DataConfig(name="images", path="imgs", color_mode="grayscale"), tmp_path)
    assert grey.x_train.shape[1:] == (8, 8, 1) and grey.num_classes == 3
    assert grey.scaling == {"kind": "divide", "value": 255.0}
    rgb = load_dataset(DataConfig(name="images", path="imgs", image_size=[10, 12]), tmp_path)
    assert rgb.x_train.shape[1:] == (10, 12, 3)
    # grey images in rgb: three equal channels
    assert np.array_equal(rgb.x_train[..., 0], rgb.x_train[..., 2])
    total = len(rgb.x_train) + len(rgb.x_val) + len(rgb.x_test)
    assert total == 18 and sorted(np.bincount(rgb.y_test)) == [1, 1, 2]  # stratified


def test_large_photos_default_to_thumbnails_with_their_aspect(tmp_path):
    digits = load_digits()
    for i in range(12):  # 320x240 "photos" (each pixel of a digit a 40x30 block)
        folder = tmp_path / "photos" / NAMES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        big = np.kron(_pixels(digits.images[i]), np.ones((30, 40), dtype="uint8"))
        _write_image(folder / f"p{i}.png", big)
    data = load_dataset(DataConfig(name="images", path="photos", color_mode="grayscale"), tmp_path)
    assert data.x_train.shape[1:] == (96, 128, 1)  # the longer side at 128, aspect kept
    asked = DataConfig(name="images", path="photos", image_size=[240, 320], color_mode="grayscale")
    assert load_dataset(asked, tmp_path).x_train.shape[1:] == (240, 320, 1)


# a 1x1 GIF whose one pixel is white (colour 0 of a white/black table)
WHITE_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def test_a_gif_in_a_class_folder_is_read_and_resized(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=6)
    (root / "zero" / "white.gif").write_bytes(WHITE_GIF)
    ds = load_dataset(DataConfig(name="images", path="imgs", color_mode="grayscale"), tmp_path)
    everything = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert len(everything) == 19
    assert any(np.all(x == 1.0) for x in everything)  # the GIF, 8x8 white after scaling


def _empty_class(root: Path) -> None:
    (root / "three").mkdir()


def _one_class(root: Path) -> None:
    for name in ("one", "two"):
        for f in (root / name).iterdir():
            f.unlink()
        (root / name).rmdir()


def _broken_image(root: Path) -> None:
    (root / "one" / "broken.png").write_bytes(b"\x89PNG not really")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_empty_class, "class folder 'three' holds no images"),
        (_one_class, "at least 2 class sub-folders (found: zero)"),
        (_broken_image, "broken.png: not a readable image"),
    ],
)
def test_a_bad_image_folder_is_one_line_and_writes_nothing(tmp_path, damage, message):
    damage(image_folder(tmp_path / "imgs", per_class=4))
    study = _study(tmp_path, {"name": "images", "path": "imgs"})
    line = _refused(["run", str(study)], tmp_path)
    assert "data.path" in line and message in line


def test_a_folder_above_the_memory_limit_streams_the_same_split_and_pixels(tmp_path):
    from hpsearch.data._images import streams

    image_folder(tmp_path / "imgs", per_class=12)
    small = {"name": "images", "path": "imgs", "image_size": [56, 56], "seed": 3}
    in_memory = load_dataset(DataConfig(**small), tmp_path)
    streamed = load_dataset(DataConfig(**small, memory_limit_mb=1), tmp_path)  # 1.3 MiB
    assert not streams(in_memory.x_train) and streams(streamed.x_train)
    for split in ("train", "val", "test"):
        a, b = getattr(in_memory, f"x_{split}"), getattr(streamed, f"x_{split}")
        assert b.shape == a.shape and np.array_equal(b[:], a)
        assert np.array_equal(getattr(streamed, f"y_{split}"), getattr(in_memory, f"y_{split}"))
    assert streamed.scaling == in_memory.scaling and streamed.input_shape == (56, 56, 3)
    batches = list(streamed.x_val.tf_dataset(streamed.y_val, 4).as_numpy_iterator())
    assert np.array_equal(np.concatenate([x for x, _ in batches]), in_memory.x_val)
    with pytest.raises(hpsearch.ConfigError, match=r"data.scale: got 'standard'.*streamed"):
        load_dataset(DataConfig(**small, memory_limit_mb=1, scale="standard"), tmp_path)


@pytest.mark.slow
def test_a_streamed_folder_trains_exports_and_predicts(tmp_path):
    image_folder(tmp_path / "imgs", per_class=30)
    from hpsearch.data._images import streams

    data = {"name": "images", "path": "imgs", "image_size": [40, 40], "memory_limit_mb": 1}
    assert streams(load_dataset(DataConfig(**data), tmp_path).x_train)  # 90 images: 1.6 MiB
    study = _study(tmp_path, data, search={"n_trials": 1, "sampler": "random"})
    ran = hpsearch.run(str(study), quiet=True)
    assert StudyMeta.of(ran).data["input_shape"] == [40, 40, 3]
    result = hpsearch.export_trial(str(study), out=tmp_path / "export", full=True)
    assert result.card.data.raw_dtype == "uint8" and result.card.data.test == 18
    assert result.card.data.fingerprint == result.card.data.fingerprint_of_search
    from hpsearch.predict import predict

    held_out = predict(tmp_path / "export", [image_folder(tmp_path / "held", 10, start=1200)])
    assert held_out.accuracy >= 0.6
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sklearn = _study(
        tmp_path,
        data,
        search={"engine": "sklearn", "method": "grid", "cv": 2},
        storage=f"sqlite:///{elsewhere / 'runs.db'}",
    )
    line = _refused(["run", str(sklearn)], elsewhere)
    assert "streamed from disk; the sklearn engine needs arrays" in line


# ------------------------------------------------------------------ loaders
LOADER = """
import numpy as np
from sklearn.datasets import load_digits

def _xy():
    d = load_digits()
    keep = d.target < 3
    return d.data[keep][:240].astype("float32"), d.target[keep][:240]

def pair():
    return _xy()

def four():
    x, y = _xy()
    return x[:180], y[:180], x[180:], y[180:]

def keras_style():
    x, y = _xy()
    return (x[:180], y[:180]), (x[180:], y[180:])

def as_dict():
    x, y = _xy()
    return {"x_train": x, "y_train": y, "class_names": ["nought", "one", "two"]}

def named_labels():
    x, y = _xy()
    return x, np.array(["zero", "one", "two"])[y]

def arrays():
    import hpsearch
    x, y = _xy()
    return hpsearch.Arrays(x, y)

def tf_batched():
    import tensorflow as tf
    return tf.data.Dataset.from_tensor_slices(_xy()).batch(50)

def tf_unbatched():
    import tensorflow as tf
    return tf.data.Dataset.from_tensor_slices(_xy())

def three():
    return 1, 2, 3

def text():
    return "digits"

def mismatch():
    x, y = _xy()
    return x, y[:10]

def strings():
    return np.array([["a", "b"], ["c", "d"]]), np.array([0, 1])

def raises():
    raise FileNotFoundError("no such file: /data/train.csv")
"""


@pytest.fixture
def loader_dir(tmp_path, monkeypatch):
    (tmp_path / "my_loaders.py").write_text(LOADER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_loaders", None)


@pytest.mark.parametrize(
    ("function", "test_size", "class_names"),
    [
        ("pair", 48, ["0", "1", "2"]),
        ("four", 60, ["0", "1", "2"]),
        ("keras_style", 60, ["0", "1", "2"]),
        ("as_dict", 48, ["nought", "one", "two"]),
        ("named_labels", 48, ["one", "two", "zero"]),
        ("arrays", 48, ["0", "1", "2"]),
        ("tf_batched", 48, ["0", "1", "2"]),
        ("tf_unbatched", 48, ["0", "1", "2"]),
    ],
)
def test_each_form_a_loader_returns_is_read(loader_dir, function, test_size, class_names):
    ds = load_dataset(DataConfig(name=f"my_loaders:{function}"), loader_dir)
    assert ds.input_shape == (64,) and ds.class_names == class_names
    assert len(ds.x_test) == test_size
    assert ds.summary()["raw_shapes"]["x_train"][1:] == [64]


def test_a_loader_study_runs_and_exports(loader_dir):
    study = _study(loader_dir, {"name": "my_loaders:four"})
    hpsearch.run(str(study), quiet=True)
    result = hpsearch.export_trial(str(study), out=loader_dir / "export")
    assert result.card.data.name == "my_loaders:four" and result.card.data.test == 60
    assert result.card.test.accuracy >= 0.8


def test_validate_neither_calls_the_loader_nor_touches_sys_path(tmp_path):
    (tmp_path / "marker_loader.py").write_text(
        "open(__file__ + '.imported', 'w').close()\ndef load():\n    return 1\n", "utf-8"
    )
    study = _study(tmp_path, {"name": "marker_loader:load"})
    before = list(sys.path)
    done = CliRunner().invoke(app, ["validate", str(study)])
    assert done.exit_code == 0, done.output
    assert sys.path == before and "marker_loader" not in sys.modules
    assert not (tmp_path / "marker_loader.py.imported").exists()
    missing = _study(tmp_path, {"name": "marker_loader:nothing"})
    line = _refused(["validate", str(missing)], tmp_path)
    assert "data.name" in line and "has no function 'nothing'" in line


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("three", "returned a tuple of 3 (int, int, int); expected (x, y)"),
        ("text", "returned str; expected (x, y)"),
        ("mismatch", "240 training inputs but 10 labels"),
        ("strings", "the training inputs must be a numeric array"),
        ("raises", "raised FileNotFoundError: no such file: /data/train.csv"),
    ],
)
def test_a_bad_loader_is_one_line_and_writes_nothing(loader_dir, function, message):
    study = _study(loader_dir, {"name": f"my_loaders:{function}"})
    line = _refused(["run", str(study)], loader_dir)
    assert f"data loader 'my_loaders:{function}'" in line and message in line


# ------------------------------------------------------------------ arrays from the API
def _digit_arrays(start: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return d.data[start : start + 400].astype("float32"), d.target[start : start + 400]


def test_arrays_from_the_api_are_recorded_and_needed_again_for_export(tmp_path, capsys):
    study = _study(tmp_path, {"name": "digits"}, search={"n_trials": 1, "sampler": "random"})
    x, y = _digit_arrays(0)
    ran = hpsearch.run(str(study), data=(x, y))
    meta = StudyMeta.of(ran)
    assert meta.config["data"]["name"] == "arrays" and len(meta.config["data"]["arrays"]) == 16
    assert meta.data["raw_shapes"] == {"x_train": [400, 64], "y_train": [400]}
    assert meta.data["train"] + meta.data["validation"] + meta.data["test"] == 400
    capsys.readouterr()

    # a resume with other arrays warns, as a changed file does
    other = _digit_arrays(400)
    hpsearch.run(hpsearch.load_study_file(study, ["search.n_trials=2"]), data=other)
    printed = capsys.readouterr()
    assert "was created with a different data" in printed.out + printed.err

    with pytest.raises(hpsearch.HpsearchError, match=r"export_trial\('sources'.*data=\(x, y\)"):
        hpsearch.export_trial(str(study), out=tmp_path / "nope")
    line = _refused_export(["export", str(study), "--out", str(tmp_path / "nope")])
    assert "ran on arrays passed from Python" in line and "data=(x, y)" in line
    assert not (tmp_path / "nope").exists()

    result = hpsearch.export_trial(str(study), out=tmp_path / "export", trial=0, data=(x, y))
    assert result.card.data.fingerprint == result.card.data.fingerprint_of_search
    assert result.card.test.samples == 80 and result.card.test.accuracy >= 0.8


def _refused_export(args: list[str]) -> str:
    done = CliRunner().invoke(app, args)
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.exit_code == 2 and len(lines) == 1, done.output
    return lines[0]


def test_arrays_are_refused_with_workers_and_in_bad_shapes(tmp_path):
    study = _study(tmp_path, {"name": "digits"})
    x, y = _digit_arrays(0)
    with pytest.raises(hpsearch.ConfigError, match=r"workers.count: got 2; arrays given"):
        hpsearch.run(str(study), data=(x, y), workers=2)
    with pytest.raises(hpsearch.ConfigError, match=r"^data: data= is a tuple of 3"):
        hpsearch.run(str(study), data=(x, y, x))
    assert not (tmp_path / "runs.db").exists()
    # a study file may say so (for the API); run from the command line, it says how
    arrays_study = _study(tmp_path, {"name": "arrays", "validation": 0.25})
    assert CliRunner().invoke(app, ["validate", str(arrays_study)]).exit_code == 0
    line = _refused(["run", str(arrays_study)], tmp_path)
    assert "data.name: got 'arrays'; arrays are passed from Python" in line
    assert "hpsearch.run(study, data=(x, y))" in line
    assert hpsearch.run(str(arrays_study), data=(x, y), quiet=True).user_attrs
