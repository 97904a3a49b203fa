"""Study files resolved for a run: :class:`StudyFile`, :func:`load_study_file` and
:func:`study_from_dict` (the typed contract between a study file and what runs it); what
hpsearch stores on a study and its trials: :class:`StudyMeta`, :class:`TrialRecord`,
:class:`RefitRecord` and :class:`SklearnSummary`."""

from hpsearch.study._file import (
    StudyFile,
    add_search_paths,
    check_user_builder,
    default_storage,
    is_study_file,
    load_study_file,
    study_from_dict,
    with_arrays,
)
from hpsearch.study._meta import STUDY_ATTR, StudyMeta
from hpsearch.study._record import RefitRecord, SklearnSummary, TrialRecord

__all__ = [
    "STUDY_ATTR",
    "RefitRecord",
    "SklearnSummary",
    "StudyFile",
    "StudyMeta",
    "TrialRecord",
    "add_search_paths",
    "check_user_builder",
    "default_storage",
    "is_study_file",
    "load_study_file",
    "study_from_dict",
    "with_arrays",
]
