"""Study files resolved for a run: :class:`StudyFile`, :func:`load_study_file` and
:func:`study_from_dict` (the typed contract between a study file and what runs it)."""

from hpsearch.study._file import (
    StudyFile,
    add_search_paths,
    check_user_builder,
    default_storage,
    is_study_file,
    load_study_file,
    study_from_dict,
)
from hpsearch.study._meta import STUDY_ATTR, StudyMeta

__all__ = [
    "STUDY_ATTR",
    "StudyFile",
    "StudyMeta",
    "add_search_paths",
    "check_user_builder",
    "default_storage",
    "is_study_file",
    "load_study_file",
    "study_from_dict",
]
