"""Imports every table model so SQLModel.metadata is complete (Alembic, tests)."""
import importlib

MODEL_MODULES = (
    "app.auth.models",
    "app.channels.models",
    "app.core.idempotency",
    "app.events.models",
    "app.locations.models",
    "app.catalog.models",
    "app.inventory.models",
    "app.pricing.models",
    "app.imports.models",
    "app.customers.models",
    "app.orders.models",
    "app.payments.models",
    "app.returns.models",
)

for _name in MODEL_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name is None or not _name.startswith(_exc.name):
            raise
