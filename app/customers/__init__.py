"""Customers domain: one record per shopper across channels (the minimal part orders need;
consents history, merge and GDPR export/erase come with issue 14)."""
