"""Background work of the inventory: reservations that ran out are released."""
from app.core.db import unit_of_work
from app.inventory import reservations
from app.worker import periodic


@periodic(5)
async def expire_reservations() -> int:
    total = 0
    while True:
        async with unit_of_work() as session:  # one transaction per batch
            n = await reservations.expire_due(session)
        total += n
        if n < 500:
            return total
