"""A promotion's definition, checked before it is stored: its params and its conflicts.

`canonical_params` maps the spellings integrators use to the stored ones, `validate_params`
names every field error, `normalize_params` fills in the defaults (stored that way, so the
engine never guesses), and `conflicts` finds the exclusive promotions the engine could not rank
against a new one. Pure; the admin resource (`promotions.py`) calls them and answers 422 / 409.
How stored promotions discount a basket is the engine's (`engine.py`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from app.pricing.money import BP

if TYPE_CHECKING:  # the engine's dataclass, in annotations only
    from app.pricing.engine import Promotion


def validate_params(type_: str, params: Any) -> list[dict]:
    """Field errors [{field, message}] for a promotion's params (empty when valid)."""
    errs: list[dict] = []

    def err(path: str, msg: str) -> None:
        errs.append({"field": f"params.{path}" if path else "params", "message": msg})

    def integer(path: str, v: Any, lo: int, hi: int) -> bool:
        if type(v) is not int or not lo <= v <= hi:
            err(path, f"An integer from {lo} to {hi}.")
            return False
        return True

    if not isinstance(params, dict):
        err("", "An object.")
        return errs
    allowed = {
        "buy_x_pay_y": {"x", "y"},
        "tiered_percent": {"tiers"},
        "percent_off": {"percent_bp", "min_subtotal"},
        "amount_off": {"amount", "per", "min_subtotal"},
        "bundle_price": {"items", "amount"},
    }[type_]
    for k in params:
        if k not in allowed:
            err(k, f"Unknown parameter for {type_} (allowed: {', '.join(sorted(allowed))}).")
    required = {"buy_x_pay_y": ("x", "y"), "tiered_percent": ("tiers",), "percent_off": ("percent_bp",),
                "amount_off": ("amount",), "bundle_price": ("items", "amount")}[type_]
    for k in required:
        if k not in params:
            err(k, "Required.")
    if errs:
        return errs
    if "min_subtotal" in params:
        integer("min_subtotal", params["min_subtotal"], 0, 10**12)
    if type_ == "buy_x_pay_y":
        ok = integer("x", params["x"], 2, 1000) & integer("y", params["y"], 0, 999)
        if ok and params["y"] >= params["x"]:
            err("y", "Must be less than x (pay y of every x).")
    elif type_ in ("percent_off",):
        integer("percent_bp", params["percent_bp"], 1, BP)
    elif type_ == "amount_off":
        integer("amount", params["amount"], 1, 10**12)
        if params.get("per", "order") not in ("order", "line", "unit"):
            err("per", "One of order, line, unit.")
    elif type_ == "tiered_percent":
        tiers = params["tiers"]
        if not isinstance(tiers, list) or not tiers or len(tiers) > 50:
            err("tiers", "A list of 1 to 50 tiers.")
            return errs
        last = 0
        for j, t in enumerate(tiers):
            if not isinstance(t, dict) or set(t) != {"min_quantity", "percent_bp"}:
                err(f"tiers[{j}]", "An object {min_quantity, percent_bp}.")
                continue
            if integer(f"tiers[{j}].min_quantity", t["min_quantity"], 1, 10**6):
                if t["min_quantity"] <= last:
                    err(f"tiers[{j}].min_quantity", "Tiers must have increasing min_quantity.")
                last = t["min_quantity"]
            integer(f"tiers[{j}].percent_bp", t["percent_bp"], 1, BP)
    elif type_ == "bundle_price":
        integer("amount", params["amount"], 0, 10**12)
        items = params["items"]
        if not isinstance(items, list) or not items or len(items) > 50:
            err("items", "A list of 1 to 50 items.")
            return errs
        seen = set()
        for j, it in enumerate(items):
            if not isinstance(it, dict) or set(it) - {"sku", "quantity"} or "sku" not in it:
                err(f"items[{j}]", "An object {sku, quantity}.")
                continue
            if not isinstance(it["sku"], str) or not 1 <= len(it["sku"]) <= 100:
                err(f"items[{j}].sku", "A SKU.")
            elif it["sku"] in seen:
                err(f"items[{j}].sku", f"{it['sku']!r} is listed twice.")
            else:
                seen.add(it["sku"])
            integer(f"items[{j}].quantity", it.get("quantity", 1), 1, 1000)
    return errs


def canonical_params(type_: str, params: Any) -> Any:
    """Spellings integrators use, mapped to the stored ones before validation: a whole-number
    `percent` (10 = 10 %) for `percent_bp`, and `scope` / `applies_to` for amount_off's `per`."""
    if not isinstance(params, dict):
        return params
    out = dict(params)

    def percent(d: dict) -> dict:
        if "percent" in d and "percent_bp" not in d and type(d["percent"]) is int:
            d = dict(d)
            d["percent_bp"] = d.pop("percent") * 100
        return d

    if type_ == "percent_off":
        out = percent(out)
    elif type_ == "tiered_percent" and isinstance(out.get("tiers"), list):
        out["tiers"] = [percent(t) if isinstance(t, dict) else t for t in out["tiers"]]
    elif type_ == "amount_off":
        for alias in ("scope", "applies_to"):
            if alias in out and "per" not in out:
                out["per"] = out.pop(alias)
    return out


def normalize_params(type_: str, params: dict) -> dict:
    """Defaults filled in (stored this way, so the engine never guesses)."""
    if type_ == "amount_off":
        return {"per": "order", **params}
    if type_ == "bundle_price":
        return {"items": [{"sku": it["sku"], "quantity": it.get("quantity", 1)} for it in params["items"]],
                "amount": params["amount"]}
    return dict(params)


def _overlap(a: Sequence | None, b: Sequence | None) -> bool:
    """None/empty = everything."""
    return not a or not b or bool(set(a) & set(b))


def _windows_overlap(a: Promotion, b: Promotion) -> bool:
    start = max((t for t in (a.valid_from, b.valid_from) if t is not None), default=None)
    end = min((t for t in (a.valid_to, b.valid_to) if t is not None), default=None)
    return start is None or end is None or start < end


def _scope_overlap(a: Promotion, b: Promotion) -> bool:
    if (a.skus is None and a.categories is None) or (b.skus is None and b.categories is None):
        return True
    if a.skus and b.skus and a.skus & b.skus:
        return True
    ca, cb = a.categories or (), b.categories or ()
    if any(x == y or x.startswith(y + "/") or y.startswith(x + "/") for x in ca for y in cb):
        return True
    # a SKU list against a category list: cannot tell without the catalog, so assume they may meet
    return bool((a.skus and cb) or (b.skus and ca))


def conflicts(new: Promotion, others: Iterable[Promotion]) -> list[Promotion]:
    """Promotions the engine could not rank against `new`: both exclusive (not stackable), of the
    same priority, reachable by the same quote (channels, customer groups, coupon, validity) and
    touching the same products. Give one a different priority (or make one stackable)."""
    if new.stackable or not new.active:
        return []
    out = []
    for o in others:
        if o.code == new.code or o.stackable or not o.active or o.priority != new.priority:
            continue
        if new.coupon_code and o.coupon_code and new.coupon_code != o.coupon_code:
            continue
        if (_overlap(new.channels, o.channels) and _overlap(new.customer_groups, o.customer_groups)
                and _windows_overlap(new, o) and _scope_overlap(new, o)):
            out.append(o)
    return out
