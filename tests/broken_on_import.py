"""A user builder module that raises while it is imported (broken_on_import:build)."""

raise RuntimeError("this module needs a settings file")


def build(params):  # pragma: no cover - never reached
    return None
