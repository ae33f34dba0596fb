"""Pricing domain (see DESIGN.md). Not built yet: see the open issues."""
