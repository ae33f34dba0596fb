"""Background work of the inventory: reservations that ran out are released."""
from app.core.db import sessionmaker
from app.inventory import reservations
from app.worker import periodic


@periodic(5)
async def expire_reservations() -> int:
    total = 0
    async with sessionmaker()() as session:
        while True:
            n = await reservations.expire_due(session)
            total += n
            if n < 500:
                return total
