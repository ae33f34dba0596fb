"""What catalog writes check before they write: valid GTINs, unique handles, SKUs and GTINs (in
any spelling, in the request and in the database), known channels, bundle rules, components.
Each problem is a 409 or 422 naming every offending field path: `invalid_gtin` for a GTIN that is
not one, `unknown_sku` for a component the catalog does not have (like every unknown SKU)."""
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.codes import gtin_forms, gtin_problem, like_prefix
from app.catalog.lookups import existing_channels, sku_key, sku_lower
from app.catalog.schemas import VariantIn
from app.catalog.tables import P, V
from app.core.errors import ApiError
from app.core.sql import where_in


def conflict(code: str, what: str, items: list[tuple[str, str]]) -> ApiError:
    """409 naming every conflicting field path and value."""
    field, value = items[0]
    return ApiError(
        409, code, f"{what} {value!r} is already in use ({field}).",
        errors=[{"field": f, "message": f"{what} {v!r} is already in use.", "value": v} for f, v in items],
    )


def check_gtins(items: list[tuple[str, str]]) -> None:
    """items: (field path, gtin) -> 422 invalid_gtin naming every one that is not a GTIN-8/12/13/14
    (only digits, one of those lengths, the right check digit)."""
    errors = [{"field": f, "message": problem} for f, g in items if (problem := gtin_problem(g))]
    if errors:
        first = next(g for f, g in items if f == errors[0]["field"])
        raise ApiError(422, "invalid_gtin", f"{first!r} is not a valid GTIN: {errors[0]['message']}", errors=errors)


async def check_channels(session: AsyncSession, codes: list[str], field: str = "channels") -> None:
    found = await existing_channels(session, codes)
    missing = [(i, c) for i, c in enumerate(codes) if c not in found]
    if missing:
        raise ApiError(
            422, "validation_error", f"Unknown channel {missing[0][1]!r}.",
            errors=[{"field": f"{field}[{i}]", "message": f"Unknown channel {c!r}."} for i, c in missing],
        )


async def free_handle(session: AsyncSession, base: str) -> str:
    taken = set((await session.execute(
        select(P.c.handle).where(or_(P.c.handle == base, P.c.handle.like(like_prefix(base + "-"), escape="\\")))
    )).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _sku_conflicts(session: AsyncSession, items: list[tuple[str, str]], *, exclude_variant: str | None = None) -> list[tuple[str, str]]:
    """items: (field path, sku) -> those already used by another variant."""
    if not items:
        return []
    stmt = select(V.c.sku).where(where_in(session, sku_lower(), sorted({sku_key(s) for _, s in items})))
    if exclude_variant:
        stmt = stmt.where(V.c.id != exclude_variant)
    used = {sku_key(s) for s in (await session.execute(stmt)).scalars()}
    return [(f, s) for f, s in items if sku_key(s) in used]


async def _gtin_conflicts(session: AsyncSession, items: list[tuple[str, str]], *, exclude_variant: str | None = None) -> list[tuple[str, str]]:
    """items: (field path, gtin) -> those already used (in any GTIN-8/12/13/14 spelling) by another variant."""
    if not items:
        return []
    forms = {f: g for _, g in items for f in gtin_forms(g)}
    stmt = select(V.c.gtin).where(where_in(session, V.c.gtin, list(forms)))
    if exclude_variant:
        stmt = stmt.where(V.c.id != exclude_variant)
    used_by = {forms[g] for g in (await session.execute(stmt)).scalars()}
    return [(f, g) for f, g in items if g in used_by]


def _duplicates_in_request(items: list[tuple[str, str]], key=lambda v: v) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    dupes = []
    for field, value in items:
        k = key(value)
        if k in seen:
            dupes.append((field, value))
        else:
            seen[k] = field
    return dupes


def _gtin_key(g: str) -> str:
    return g.lstrip("0")


async def check_unique(session: AsyncSession, skus: list[tuple[str, str]], gtins: list[tuple[str, str]],
                        *, exclude_variant: str | None = None) -> None:
    dup = _duplicates_in_request(skus, sku_key)
    if dup:
        raise conflict("duplicate_sku", "SKU", dup)
    dup = _duplicates_in_request(gtins, _gtin_key)
    if dup:
        raise conflict("duplicate_gtin", "GTIN", dup)
    used = await _sku_conflicts(session, skus, exclude_variant=exclude_variant)
    if used:
        raise conflict("duplicate_sku", "SKU", used)
    used = await _gtin_conflicts(session, gtins, exclude_variant=exclude_variant)
    if used:
        raise conflict("duplicate_gtin", "GTIN", used)


async def resolve_components(session: AsyncSession, comps: list, field: str, own_sku: str) -> list[dict]:
    """Components -> rows for bundle_components (with the stored SKU spelling); 422 naming every bad one."""
    errors = []
    seen = set()
    own = sku_key(own_sku)
    for j, c in enumerate(comps):
        key = sku_key(c.sku)
        if key == own:
            errors.append({"field": f"{field}[{j}].sku", "message": "A bundle cannot contain itself."})
        elif key in seen:
            errors.append({"field": f"{field}[{j}].sku", "message": f"Component {c.sku!r} is listed twice."})
        seen.add(key)
    found = {}
    if seen:
        rows = await session.execute(select(V.c.id, V.c.sku, V.c.is_bundle).where(where_in(session, sku_lower(), sorted(seen))))
        found = {sku_key(r.sku): r for r in rows.all()}
    unknown = []
    for j, c in enumerate(comps):
        if sku_key(c.sku) == own:
            continue
        r = found.get(sku_key(c.sku))
        if r is None:
            unknown.append({"field": f"{field}[{j}].sku", "message": f"Unknown SKU {c.sku!r}."})
        elif r.is_bundle:
            errors.append({"field": f"{field}[{j}].sku", "message": f"{c.sku!r} is a bundle; bundles cannot contain bundles."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    if unknown:
        raise ApiError(422, "unknown_sku", unknown[0]["message"], errors=unknown)
    return [{"component_variant_id": found[sku_key(c.sku)].id, "component_sku": found[sku_key(c.sku)].sku,
             "quantity": c.quantity} for c in comps]


def default_variant_title(v: VariantIn | dict, product_title: str) -> str:
    options = v.options if isinstance(v, VariantIn) else v.get("options") or {}
    title = v.title if isinstance(v, VariantIn) else v.get("title")
    if title:
        return title
    if options:
        return " / ".join(str(x) for x in options.values())[:500]
    return product_title


def bundle_rules(ptype: str, variants: list[VariantIn], field_prefix: str = "variants") -> None:
    errors = []
    if ptype == "bundle":
        if len(variants) != 1:
            errors.append({"field": field_prefix, "message": "A bundle product has exactly one variant."})
        for i, v in enumerate(variants):
            if not v.components:
                errors.append({"field": f"{field_prefix}[{i}].components",
                               "message": "A bundle variant needs at least one component."})
            if not v.track_inventory:
                errors.append({"field": f"{field_prefix}[{i}].track_inventory",
                               "message": "A bundle's stock is derived from its components; it cannot be untracked."})
    else:
        for i, v in enumerate(variants):
            if v.components is not None:
                errors.append({"field": f"{field_prefix}[{i}].components",
                               "message": "Only bundle products have components (type: bundle)."})
    if errors:
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)


async def rediagnose(session: AsyncSession, fn) -> ApiError:
    """After an IntegrityError (its savepoint rolled back): find out which uniqueness rule lost the race."""
    try:
        await fn()
    except ApiError as exc:
        return exc
    return ApiError(409, "conflict", "The change conflicts with a concurrent change; retry.")
