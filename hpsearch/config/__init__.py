"""Study-file configuration: the pydantic schema, YAML reading and overrides."""

from hpsearch.config._loader import apply_overrides, validate_config
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
    "apply_overrides",
    "validate_config",
]
