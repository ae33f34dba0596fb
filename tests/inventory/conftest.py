import pytest

from tests.inventory.builders import World


@pytest.fixture
async def world(client, admin):
    """A fresh inventory world per test (see builders.World)."""
    return await World().setup(client, admin)
