"""Imports every table model so SQLModel.metadata is complete (Alembic, tests)."""
from app.auth import models as _auth  # noqa: F401
from app.channels import models as _channels  # noqa: F401
from app.core import idempotency as _idempotency  # noqa: F401
from app.events import models as _events  # noqa: F401
from app.inventory import models as _inventory  # noqa: F401
