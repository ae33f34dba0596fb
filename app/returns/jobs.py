"""Background work of returns: authorizations whose return window ran out become `expired`
(`return.expired`). Until the worker gets there, they already read, filter and refuse as
expired (states.effective_status): the job only writes down what time has decided."""
from app.core.db import unit_of_work
from app.returns import service
from app.worker import periodic

BATCH = 500


@periodic(300)
async def expire_return_authorizations() -> int:
    total = 0
    while True:
        async with unit_of_work() as session:
            n = await service.expire_due(session, limit=BATCH)
        total += n
        if n < BATCH:
            return total
