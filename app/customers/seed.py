"""Two demo customers: a loyalty member who registered in the web shop (and shows her card at
the till) and a B2B buyer set up by the back office. Idempotent: existing emails are left alone."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.service import channel_row
from app.customers import service
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate

DEMO_CUSTOMERS = [
    {"email": "anna.schmidt@example.com", "name": "Anna Schmidt", "phone": "+49 40 1234567", "group": "loyalty",
     "loyalty_card": "LC-100001", "channel": "web-de",
     "addresses": [{"name": "Anna Schmidt", "line1": "Spitalerstraße 12", "postal_code": "20095", "city": "Hamburg",
                    "country": "DE", "lat": 53.5511, "lon": 10.0037}],
     "consents": {"marketing": True, "personalization": True}},
    {"email": "einkauf@weinbar-hamburg.example", "name": "Weinbar Hamburg GmbH", "phone": "+49 40 7654321",
     "group": "b2b", "channel": None,
     "addresses": [{"name": "Weinbar Hamburg GmbH", "line1": "Große Elbstraße 145", "postal_code": "22767",
                    "city": "Hamburg", "country": "DE"}]},
]


async def seed_demo(session: AsyncSession) -> list[str]:
    have = set((await session.execute(select(Customer.email_lower))).scalars())
    made = []
    for spec in DEMO_CUSTOMERS:
        if service.email_key(spec["email"]) in have:
            continue
        data = CustomerCreate(**{k: v for k, v in spec.items() if k != "channel"})
        channel = spec["channel"] if spec["channel"] and await channel_row(session, spec["channel"]) else None
        await service.create(session, data, channel=channel)
        made.append(f"customer {spec['email']}")
    return made
