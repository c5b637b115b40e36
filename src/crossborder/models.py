"""Import every capability's models so that ``Base.metadata`` knows all tables."""

from crossborder.audit import models as audit_models
from crossborder.auth import models as auth_models
from crossborder.directory import models as directory_models
from crossborder.evidence import models as evidence_models
from crossborder.federation import models as federation_models
from crossborder.intel import models as intel_models
from crossborder.matching import models as matching_models
from crossborder.requests import models as requests_models
from crossborder.selectors import models as selectors_models

__all__ = [
    "audit_models",
    "auth_models",
    "directory_models",
    "evidence_models",
    "federation_models",
    "intel_models",
    "matching_models",
    "requests_models",
    "selectors_models",
]
