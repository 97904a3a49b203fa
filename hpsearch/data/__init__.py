"""Data sets: a registry of loaders, scaling and splits."""

from hpsearch.data._registry import (
    DATASETS,
    Dataset,
    apply_scaling,
    check_data_config,
    load_dataset,
)

__all__ = ["DATASETS", "Dataset", "apply_scaling", "check_data_config", "load_dataset"]
