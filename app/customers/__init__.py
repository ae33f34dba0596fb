"""Customers domain: one record per shopper across channels, their consents (with history),
groups, merges, GDPR export and erasure, and the audit trail of who touched their data.

    models.py    customers, customer_consents, customer_audit
    service.py   lookups for other domains (resolve_customer, get_customer_group), create, update
    consents.py  consent history; has_consent for other domains
    groups.py    customer groups; who may pay by invoice (B2B)
    merge.py     two records of one person become one
    privacy.py   GDPR export and erasure (reads and rewrites other domains' tables)
    audit.py     the audit trail
    router.py    /v1/customers (the role matrix is there)
"""
