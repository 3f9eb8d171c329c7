"""A module whose import fails on a missing dependency."""

import not_a_real_dependency_xyz  # type: ignore[import-not-found]  # noqa: F401
