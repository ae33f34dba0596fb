"""Every event type the API emits, and which roles may read which.

A webhook subscription and the `type` filter of GET /v1/events accept these names (422
naming any other). A domain that emits a new type adds it here.
"""
EVENT_TYPES: dict[str, str] = {
    # API.md section 11
    "product.created": "A product was created (the product after the change).",
    "product.updated": "A product or one of its variants changed.",
    "price_list.updated": "A price list was created, changed, or its prices were set.",
    "inventory.level_changed": "A stock level changed (on hand, reserved or safety stock).",
    "order.created": "An order was placed (checkout, POS sale, marketplace import).",
    "order.confirmed": "An order is confirmed (paid, or accepted without payment).",
    "order.cancelled": "An order was cancelled.",
    "fulfillment.created": "A fulfillment was created (sourced to a location).",
    "fulfillment.ready": "A pickup is ready at its store.",
    "fulfillment.shipped": "A fulfillment was shipped (carrier and tracking).",
    "fulfillment.collected": "A pickup or reservation was collected.",
    "fulfillment.declined": "A location declined a fulfillment (its lines re-sourced).",
    "return.created": "A return was created.",
    "refund.created": "Money was refunded.",
    # further types emitted by the domains
    "fulfillment.cancelled": "A fulfillment was cancelled.",
    "fulfillment.expired": "A pickup or reservation was not collected in time.",
    "return.completed": "An authorized return was received.",
    "return.cancelled": "A return authorization was cancelled.",
    "return.expired": "A return authorization ran out.",
    "payment.captured": "A payment was captured.",
    "payment.voided": "A payment authorization was released.",
    "payment.operation_failed": "A capture, void or refund failed for good.",
    "payment.authorization_expiring": "An uncaptured authorization is about to lapse.",
    "customer.created": "A customer was created.",
    "customer.updated": "A customer changed.",
    "customer.merged": "Two customer records were merged into one.",
    "customer.erased": "A customer's personal data was erased (GDPR).",
    "transfer.dispatched": "A stock transfer left its origin.",
    "transfer.received": "A stock transfer arrived.",
    "promotion.created": "A promotion was created.",
    "promotion.updated": "A promotion changed.",
    "promotion.ended": "A promotion was ended now (valid_to set to the moment it was ended).",
    "promotion.deleted": "A promotion was deleted (data: the promotion as it was).",
    "tax_rate.created": "A tax rate was set for a new country and tax class.",
    "tax_rate.updated": "A tax rate changed.",
    "channel.created": "A channel was created.",
    "channel.updated": "A channel changed (price lists, fulfillment locations, settings).",
    "location.created": "A location was created.",
    "location.updated": "A location changed (address, capabilities, priority, active).",
    "webhook_endpoint.failing": "A webhook endpoint's delivery failed for good (after every retry).",
}

WILDCARD = "*"
# Events about resources only admin keys may read (promotions carry their coupon codes).
ADMIN_ONLY_PREFIXES = ("webhook_endpoint.", "promotion.", "tax_rate.")
# Events about locations alone (no channel): a store's POS key reads those at its store.
LOCATION_ONLY_PREFIXES = ("transfer.",)
# Events of a location that the keys of a channel fulfilled from it read too (scope.py).
CHANNEL_LOCATION_TYPES = ("inventory.level_changed", "location.created", "location.updated")
# A dropshipper reads the fulfillments routed to its location, nothing else.
DROPSHIPPER_PREFIXES = ("fulfillment.",)
# Roles that may own webhook endpoints (API.md section 11 / issue 13).
ENDPOINT_ROLES = ("admin", "marketplace", "dropshipper")


def unknown(types: list[str]) -> list[str]:
    return [t for t in types if t != WILDCARD and t not in EVENT_TYPES]


def readable_by_role(role: str, type_: str) -> bool:
    """Whether a role may ever read events of this type (its binding narrows further)."""
    if role == "admin":
        return True
    if role == "dropshipper":
        return type_.startswith(DROPSHIPPER_PREFIXES)
    if role in ("storefront", "marketplace") and type_.startswith(LOCATION_ONLY_PREFIXES):
        return False
    return not type_.startswith(ADMIN_ONLY_PREFIXES)
