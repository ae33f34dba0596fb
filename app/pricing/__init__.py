"""Pricing: price lists, tax rates, promotions and the one quote engine (engine.py) every channel prices through."""
