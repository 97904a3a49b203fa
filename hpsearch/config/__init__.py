"""Study files: schema and loader."""

from hpsearch.config._loader import StudyFile, apply_overrides, default_storage, load_study_file
from hpsearch.config._schema import (
    ChoiceParam,
    DataConfig,
    FixedParam,
    ModelConfig,
    ObjectiveConfig,
    RangeParam,
    SearchConfig,
    StudyConfig,
)

__all__ = [
    "ChoiceParam",
    "DataConfig",
    "FixedParam",
    "ModelConfig",
    "ObjectiveConfig",
    "RangeParam",
    "SearchConfig",
    "StudyConfig",
    "StudyFile",
    "apply_overrides",
    "default_storage",
    "load_study_file",
]
