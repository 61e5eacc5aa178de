"""Exception and warning tree of metevo.

Every message names what was expected, what was found, where (patient, timepoint, file or
column) and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ClinicalTableError",
    "CohortError",
    "DataQualityWarning",
    "EventsTableError",
    "GeometryError",
    "ImageReadError",
    "ManifestError",
    "MaskValueError",
    "MetevoError",
    "MetevoWarning",
    "MissingDependencyError",
    "NotFittedError",
    "ProtocolWarning",
    "RegistrationWarning",
    "StatisticsWarning",
]


class MetevoError(Exception):
    """Base class of every error metevo raises on purpose."""


class CohortError(MetevoError, ValueError):
    """The cohort's files or tables do not satisfy the cohort contract."""


class ManifestError(CohortError):
    """A manifest row or column is missing, duplicated or malformed."""


class GeometryError(CohortError):
    """A mask does not share its image's grid (size, spacing, origin, direction)."""


class MaskValueError(CohortError):
    """Mask values contradict the declared mask kind."""


class ClinicalTableError(CohortError):
    """The clinical table is malformed."""


class EventsTableError(CohortError):
    """The events table is malformed."""


class ImageReadError(MetevoError, OSError):
    """An image or mask file is missing, unreadable or corrupt."""


class MissingDependencyError(MetevoError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class NotFittedError(MetevoError, ValueError):
    """A fitted-model method was called before ``fit``."""


class MetevoWarning(UserWarning):
    """Base class of metevo's warnings."""


class ProtocolWarning(MetevoWarning):
    """Acquisition protocol changes between visits (phase, slice thickness, kernel)."""


class DataQualityWarning(MetevoWarning):
    """Input is valid but suspicious (noisy masks, non-HU intensities, baseline flags...)."""


class RegistrationWarning(MetevoWarning):
    """Registration fell back or could not use the preferred driver."""


class StatisticsWarning(MetevoWarning):
    """A statistical result is fragile (few events, non-proportional hazards...)."""
