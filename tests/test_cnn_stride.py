"""The cnn family's per-layer convolution stride: catalog entry, builder and a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import hpsearch
import hpsearch.models._catalog as catalog
from hpsearch.config._schema import StudyConfig
from hpsearch.exceptions import ConfigError
from hpsearch.space import SearchSpace


def _space(space: dict[str, Any]) -> SearchSpace:
    return SearchSpace(StudyConfig.model_validate({"space": space, "model": {"family": "cnn"}}))


def _cnn_params(**changes: Any) -> dict[str, Any]:
    params = {name: p.default for name, p in catalog.get_family("cnn").all_params().items()}
    params.update(filters=4, dense_width=8)
    params.update(changes)
    return params


def _conv_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


# ------------------------------------------------------------------- catalog
def test_strides_is_a_per_layer_int_like_kernel_size():
    strides, kernel = catalog.CNN["strides"], catalog.CNN["kernel_size"]
    assert (strides.kind, strides.default, strides.low) == ("int", 1, 1)
    assert strides.per_layer and kernel.per_layer
    assert strides.allowed() == "an integer >= 1"


def test_per_layer_strides_are_searched_as_strides_1_to_depth():
    space = _space(
        {"blocks": {"low": 1, "high": 3}, "strides": {"choices": [1, 2], "per_layer": True}}
    )
    assert space.example_params()["strides"] == [1]  # one block at the range's low end
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(6):
        trial = study.ask()
        params = space.suggest(trial)
        blocks = params["blocks"]
        assert len(params["strides"]) == blocks
        assert {k for k in trial.params if k.startswith("strides")} == {
            f"strides_{i}" for i in range(1, blocks + 1)
        }
        study.tell(trial, 0.0)


def test_a_stride_below_one_is_refused():
    with pytest.raises(ConfigError, match=r"allowed: an integer >= 1") as info:
        _space({"strides": {"choices": [0, 1]}})
    assert info.value.path == "space.strides.choices[0]"


def test_a_study_that_does_not_search_strides_stores_no_strides_param():
    space = _space({"blocks": {"low": 1, "high": 2}})
    assert "strides" not in space.searched and space.fixed["strides"] == 1
    trial = optuna.create_study().ask()
    assert space.suggest(trial)["strides"] == 1
    assert not any(k.startswith("strides") for k in trial.params)


# ------------------------------------------------------------------- builder
def test_the_conv_layers_have_the_strides_asked_for():
    from hpsearch.models import build_model

    model = build_model(
        "cnn", _cnn_params(blocks=3, strides=[2, 1, 2], pooling="none"), (8, 8, 1), 10
    )
    convs = _conv_layers(model)
    assert [c.strides for c in convs] == [(2, 2), (1, 1), (2, 2)]
    # padding same: 8 -> 4 -> 4 -> 2
    assert [tuple(c.output.shape[1:3]) for c in convs] == [(4, 4), (4, 4), (2, 2)]

    one = build_model("cnn", _cnn_params(blocks=2, strides=2, pooling="none"), (8, 8, 1), 10)
    assert [c.strides for c in _conv_layers(one)] == [(2, 2), (2, 2)]  # one value: every block
    default = build_model("cnn", _cnn_params(), (8, 8, 1), 10)
    assert [c.strides for c in _conv_layers(default)] == [(1, 1), (1, 1)]


def test_a_kernel_with_no_room_left_raises_a_readable_error():
    from hpsearch.models import build_model

    # 8x8, valid 3x3 with stride 4 -> 2x2: the second 3x3 kernel does not fit
    params = _cnn_params(blocks=2, kernel_size=3, strides=[4, 1], padding="valid", pooling="none")
    with pytest.raises(
        ValueError,
        match=r"^block 2: a 3x3 kernel with stride 1 does not fit the 2x2 feature map "
        r"\(padding valid\)$",
    ):
        build_model("cnn", params, (8, 8, 1), 10)
    # pooling shrinks the map too: 8 -> 6 (3x3 valid) -> 3 (pool 2); a 5x5 kernel then fails
    pooled = _cnn_params(blocks=2, kernel_size=[3, 5], padding="valid", pooling="max")
    with pytest.raises(
        ValueError, match=r"^block 2: a 5x5 kernel with stride 1 does not fit the 3x3"
    ):
        build_model("cnn", pooled, (8, 8, 1), 10)
    # a kernel as large as the map fits (a 1x1 output); a non-square image names both sides
    build_model("cnn", _cnn_params(blocks=1, kernel_size=8, padding="valid"), (8, 8, 1), 10)
    with pytest.raises(
        ValueError, match=r"^block 1: a 5x5 kernel with stride 2 does not fit the 4x8"
    ):
        build_model(
            "cnn", _cnn_params(blocks=1, kernel_size=5, strides=2, padding="valid"), (4, 8, 1), 10
        )


def test_padding_same_strides_never_run_out_of_room_and_pooling_is_skipped():
    import keras

    from hpsearch.models import build_model

    # 8 -> 2 (stride 4) -> pool 3 skipped -> 1 (stride 4) -> 1: every block builds
    params = _cnn_params(blocks=3, strides=4, kernel_size=5, pooling="max", pool_size=3)
    model = build_model("cnn", params, (8, 8, 1), 10)
    assert [tuple(c.output.shape[1:3]) for c in _conv_layers(model)] == [(2, 2), (1, 1), (1, 1)]
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)


# ---------------------------------------------------------------- end to end
def test_a_stride_that_leaves_no_room_fails_that_trial_only(write_study: Any, storage_url: str):
    # 8x8 digits, valid 3x3 convolutions: stride 4 in block 1 leaves a 2x2 map, too small
    # for block 2's kernel; stride 1 leaves 6x6 and block 2 builds with either stride
    path: Path = write_study(
        model={"family": "cnn"},
        space={
            "blocks": 2,
            "strides": {"choices": [1, 4], "per_layer": True},
            "kernel_size": 3,
            "padding": "valid",
            "pooling": "none",
            "filters": 4,
            "dense_width": 8,
            "batch_size": 64,
            "epochs": 1,
        },
        search={"sampler": "grid"},
    )
    hpsearch.run(hpsearch.load_study_file(path, []), quiet=True)
    study = optuna.load_study(study_name="study", storage=storage_url)
    by_strides = {(t.params["strides_1"], t.params["strides_2"]): t for t in study.trials}
    assert sorted(by_strides) == [(1, 1), (1, 4), (4, 1), (4, 4)]
    for strides, trial in by_strides.items():
        if strides[0] == 1:
            assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
        else:
            assert trial.state == TrialState.FAIL
            assert trial.user_attrs["fail_reason"] == (
                "model could not be built: block 2: a 3x3 kernel with stride "
                f"{strides[1]} does not fit the 2x2 feature map (padding valid)"
            )
