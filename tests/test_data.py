"""Data sets: loaders, scaling, splits; the test split stays apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig
from hpsearch.data import apply_scaling, load_dataset
from hpsearch.exceptions import ConfigError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def _rows(ds) -> set[bytes]:
    return {
        row.tobytes()
        for row in np.concatenate([ds.x_train, ds.x_val]).reshape(
            len(ds.x_train) + len(ds.x_val), -1
        )
    }


def test_digits_default_split_scaling_and_cache():
    cfg = DataConfig(name="digits", validation=0.25, seed=0)
    ds = load_dataset(cfg)
    assert load_dataset(cfg) is ds  # loaded once per process
    assert ds.input_shape == (8, 8, 1) and ds.num_classes == 10
    # 1797 images: 20% held out as the test split, then 25% of the rest for validation
    assert len(ds.x_test) == 359 and len(ds.x_val) == 360 and len(ds.x_train) == 1078
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0
    assert ds.scaling == {"kind": "divide", "value": 16.0}
    # stratified: every class in every split
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == set(range(10))
    # the test split never overlaps what selection sees
    test_rows = {row.tobytes() for row in ds.x_test.reshape(len(ds.x_test), -1)}
    overlap = test_rows & _rows(ds)
    assert len(overlap) <= 5  # digits has a few duplicate images, not shared rows
    assert ds.summary()["fingerprint"] == ds.fingerprint and len(ds.fingerprint) == 16


def test_subset_and_validation_count():
    ds = load_dataset(DataConfig(name="digits", subset=300, validation=60, seed=3))
    assert len(ds.x_train) == 240 and len(ds.x_val) == 60
    assert len(ds.x_test) == 359  # the subset does not shrink the test split


def test_npz_with_and_without_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 6, 6), dtype=np.uint8)
    y = np.repeat(np.arange(4), 50)
    full = tmp_path / "full.npz"
    np.savez(full, x_train=x, y_train=y, x_test=x[:40], y_test=y[:40])
    ds = load_dataset(DataConfig(name="npz", path=str(full), validation=0.2), tmp_path)
    assert ds.input_shape == (6, 6, 1) and ds.num_classes == 4
    assert len(ds.x_test) == 40 and len(ds.x_train) == 160
    assert ds.scaling["kind"] == "divide" and ds.x_train.max() <= 1.0  # integer pixels scaled
    bare = tmp_path / "bare.npz"
    np.savez(bare, x_train=x, y_train=y)
    ds = load_dataset(DataConfig(name="npz", path="bare.npz", test=0.25), tmp_path)
    assert len(ds.x_test) == 50


def test_npz_missing_arrays_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "bad.npz", features=np.zeros((4, 2)))
    with pytest.raises(ConfigError, match=r"data\.path: got 'bad\.npz'; the \.npz lacks x_train"):
        load_dataset(DataConfig(name="npz", path="bad.npz"), tmp_path)


def test_csv_with_named_labels_standard_scaling_and_image_shape(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["a,b,species,c,d"]
    for i in range(120):
        label = ["cat", "dog", "owl"][i % 3]
        values = rng.normal(size=4) * 10 + i % 3
        lines.append(f"{values[0]},{values[1]},{label},{values[2]},{values[3]}")
    (tmp_path / "pets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DataConfig(name="csv", path="pets.csv", label_column="species", scale="standard")
    ds = load_dataset(cfg, tmp_path)
    assert ds.class_names == ["cat", "dog", "owl"] and ds.input_shape == (4,)
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
    shaped = load_dataset(cfg.model_copy(update={"image_shape": [2, 2, 1]}), tmp_path)
    assert shaped.input_shape == (2, 2, 1)
    with pytest.raises(ConfigError, match=r"data\.label_column: got 'label'"):
        load_dataset(DataConfig(name="csv", path="pets.csv"), tmp_path)


def test_apply_scaling_matches_training_scaling():
    ds = load_dataset(DataConfig(name="digits"))
    from sklearn.datasets import load_digits

    raw = load_digits().images[..., None]
    assert apply_scaling(raw, ds.scaling).max() == 1.0


def test_keras_datasets_adapter(monkeypatch):
    """mnist & co. go through keras.datasets when no path is given (stubbed: tests are offline)."""
    import keras

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8)
    y = np.arange(120) % 10
    calls = []

    def fake_load_data():
        calls.append(1)
        return (x, y), (x[:20], y[:20])

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fake_load_data)
    ds = load_dataset(DataConfig(name="fashion_mnist", validation=0.25, seed=11))
    assert calls and ds.class_names[0] == "T-shirt/top" and ds.input_shape == (28, 28, 1)
    assert ds.scaling == {"kind": "divide", "value": 255.0} and len(ds.x_test) == 20

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(ConfigError, match=r"data\.name: got 'cifar10'.*set data\.path"):
        load_dataset(DataConfig(name="cifar10", seed=12))


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.exists(), reason="needs ../shared/data/mnist.npz")
def test_real_mnist_from_local_npz():
    ds = load_dataset(DataConfig(name="mnist", path=str(SHARED_MNIST), validation=0.1))
    assert len(ds.x_train) == 54000 and len(ds.x_val) == 6000 and len(ds.x_test) == 10000
    assert ds.input_shape == (28, 28, 1) and ds.scaling["value"] == 255.0
