"""The catalog part of `POST /v1/catalog/import`: prepared rows -> products and variants.

Upsert by sku, set-based. Files are read by app/catalog/import_formats.py and validated by
import_rows.py; the use case, inline or as a job, is app/imports/jobs.py (above the catalog: it
also writes prices and stock, through `Extras`). Per chunk of rows:
1. load what exists in a few bulk queries (variants by sku in any case, products by handle/id,
   gtin owners, channels, bundle components), 5,000 keys per IN list;
2. decide in Python, per product group (rows sharing `product_handle`), what is
   created, updated or unchanged; the `extras` (price and stock columns) check their part of
   each row before anything is written;
3. write with a handful of multi-row INSERT / executemany UPDATE statements (COPY on
   PostgreSQL), the events with one INSERT, then the extras.

Idempotent: a row whose values equal what is stored changes nothing (no version
bump, no event). Good rows land even when other rows fail. Nothing here commits.
"""
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import asyncpg
import orjson
from sqlalchemy import Text, bindparam, cast, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import sqltypes
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.codes import gtin_forms, is_handle, slugify
from app.catalog.import_rows import ImportComponent, Row
from app.catalog.service import BC, P, PC, V, existing_channels, sku_key, sku_lower
from app.core.sql import chunks, where_in
from app.core import clock
from app.core import cache
from app.core.db import is_postgres
from app.core.ids import new_ids
from app.core.errors import ApiError
from app.events.service import emit_many

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 1000
WRITE_CHUNK = 2000
ANALYZE_AFTER = 5000  # variants created

PRODUCT_FIELDS = ("product_title", "description", "status", "category", "tax_class", "product_attributes")
# import row field -> products column
PRODUCT_COLUMN = {"product_title": "title", "description": "description", "status": "status", "category": "category",
                  "tax_class": "tax_class", "product_attributes": "attributes"}
VARIANT_FIELDS = ("title", "gtin", "options", "attributes", "weight_grams", "track_inventory")
COUNTS = ("created", "updated", "unchanged", "failed", "products_created", "products_updated", "prices_set", "stock_set")

loads = orjson.loads


class Extras(Protocol):
    """Columns beyond the catalog (price, stock): checked per row before the catalog writes, written after."""

    async def check(self, session: AsyncSession, rows: list[tuple[Row, bool, bool]]) -> None: ...

    async def write(self, session: AsyncSession, rows: list[Row]) -> dict[str, int]: ...


class StoredVariant(NamedTuple):
    id: str
    product_id: str
    sku: str
    gtin: str | None
    title: str
    options: dict
    attributes: dict
    weight_grams: int | None
    track_inventory: bool
    is_bundle: bool


def plan_chunks(rows: list[Row], size: int) -> list[list[Row]]:
    """The rows in chunks of about `size`, each written (and, in a job, committed) on its own.
    The rows of one product stay together (its product fields may come from any of them), and
    products with a bundle row come last (a bundle's components may be created by the file)."""
    groups: dict[tuple, list[Row]] = {}
    late: set[tuple] = set()
    for r in rows:
        if r.data is None or r.errors:
            key: tuple = ("line", r.line)
        else:
            handle = r.data.product_handle or (slugify(r.data.product_title) if r.data.product_title else None)
            key = ("handle", handle) if handle else ("sku", sku_key(r.sku))
            if r.data.components is not None:
                late.add(key)
        groups.setdefault(key, []).append(r)
    ordered = [g for k, g in groups.items() if k not in late] + [g for k, g in groups.items() if k in late]
    out: list[list[Row]] = []
    current: list[Row] = []
    for group in ordered:
        if current and len(current) + len(group) > size:
            out.append(current)
            current = []
        current.extend(group)
    if current:
        out.append(current)
    return out


# --------------------------------------------------------------------------- the import

@dataclass
class ProductPlan:
    handle: str
    rows: list[Row] = field(default_factory=list)
    existing: Any = None  # products row
    id: str | None = None
    values: dict = field(default_factory=dict)  # products columns (new) / changed columns (existing)
    sources: dict = field(default_factory=dict)  # row field -> line that supplied it
    channels: list[str] | None = None
    channels_source: int | None = None
    changed_fields: list[str] = field(default_factory=list)
    variants_created: list[str] = field(default_factory=list)
    variants_updated: list[str] = field(default_factory=list)


async def bulk_insert(session: AsyncSession, table, rows: list[dict]) -> None:
    """Many rows into one table: PostgreSQL COPY (binary, in the session's transaction) — several
    times faster than multi-row INSERTs for tens of thousands of rows; elsewhere executemany
    INSERTs of WRITE_CHUNK rows. Every row carries every column."""
    if not rows:
        return
    if not is_postgres(session):
        for part in chunks(rows, WRITE_CHUNK):
            await session.execute(insert(table), part)
        return
    columns = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if isinstance(c.type, sqltypes.JSON)}
    records = [
        tuple(orjson.dumps(row[c]).decode() if c in json_columns else row[c] for c in columns)
        for row in rows
    ]
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    cache.mark_changed(conn, table.name)  # COPY bypasses SQLAlchemy: tell the caches ourselves
    try:
        await raw.copy_records_to_table(table.name, records=records, columns=columns)
    except asyncpg.exceptions.IntegrityConstraintViolationError as exc:  # not wrapped by SQLAlchemy here
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc


async def apply_rows(session: AsyncSession, rows: list[Row], extras: Extras | None = None) -> dict[str, int]:
    """Write one chunk of prepared rows in the session's transaction (fails rows in place) -> counts."""
    postgres = is_postgres(session)
    if postgres:
        # Plan every bulk statement for its actual parameters: a cached generic plan made while
        # the tables were small (the first chunks of a first import) would scan them sequentially.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        counts = await _apply(session, rows, extras)
    except IntegrityError:
        raise ApiError(409, "conflict", "A concurrent change touched the same SKUs, GTINs or handles; retry the import.") from None
    return counts


async def analyze(session: AsyncSession) -> None:
    """After ANALYZE_AFTER variants were created: PostgreSQL gets fresh statistics (and, through
    the invalidation, fresh cached plans in every connection) instead of waiting for autovacuum."""
    if is_postgres(session):
        await session.execute(text("ANALYZE products, variants, product_channels, bundle_components"))


def row_errors(rows: list[Row], aliases: dict[str, str] | None = None) -> list[tuple[Row, list[dict[str, str]]]]:
    """The failed rows with their errors; field names as the file spells them (`aliases`)."""
    out = []
    for r in rows:
        if r.errors:
            errs = r.errors
            if aliases:
                errs = [{"field": _alias(e["field"], aliases), "message": e["message"]} for e in errs]
            out.append((r, errs))
    return out


def _alias(path: str, aliases: dict[str, str]) -> str:
    head, sep, rest = path.partition(".")
    name = aliases.get(head.split("[", 1)[0])
    return name if name and not sep else f"{name}.{rest}" if name else path


async def _apply(session: AsyncSession, rows: list[Row], extras: Extras | None) -> dict[str, int]:
    good = [r for r in rows if not r.errors]  # (SKUs given twice were failed by prepare, file-wide)

    # ---- load existing variants (the rows' skus and every component sku, in any spelling)
    comp_skus = {sku_key(c.sku) for r in good if r.data.components for c in r.data.components}
    wanted = sorted({sku_key(r.sku) for r in good} | comp_skus)
    existing: dict[str, Any] = {}
    for part in chunks(wanted):
        # JSON columns as text, parsed with orjson (the driver's json.loads is the slow part here)
        res = await session.execute(
            select(V.c.id, V.c.product_id, V.c.sku, V.c.gtin, V.c.title, cast(V.c.options, Text).label("options"),
                   cast(V.c.attributes, Text).label("attributes"), V.c.weight_grams, V.c.track_inventory, V.c.is_bundle)
            .where(where_in(session, sku_lower(), part)))
        for v in res.all():
            existing[v.sku] = StoredVariant(v.id, v.product_id, v.sku, v.gtin, v.title, loads(v.options),
                                            loads(v.attributes), v.weight_grams, v.track_inventory, v.is_bundle)
    # ---- one spelling per SKU from here on: the stored one, else the row's (upsert by sku in any case)
    spelling = {sku_key(s): s for s in existing}
    for r in good:
        spelling.setdefault(sku_key(r.sku), r.sku)
    for r in good:
        r.sku = spelling[sku_key(r.sku)]
        for c in r.data.components or ():
            c.sku = spelling.get(sku_key(c.sku), c.sku)

    # ---- products: of existing variants (by id) and of new variants (by handle)
    for r in good:
        v = existing.get(r.sku)
        if v is None:
            r.handle = r.data.product_handle or (slugify(r.data.product_title) if r.data.product_title else None)
            if r.handle is None:
                r.fail("product_handle", "Required for a new SKU (or give product_title to derive it).")
            elif not is_handle(r.handle):
                r.fail("product_handle", "Invalid handle.")
    good = [r for r in good if not r.errors]
    pids = sorted({existing[r.sku].product_id for r in good if r.sku in existing})
    handles = sorted({r.handle for r in good if r.sku not in existing})
    products_by_id: dict[str, Any] = {}
    prod_cols = (P.c.id, P.c.handle, P.c.type, P.c.title, P.c.description, P.c.status, P.c.category,
                 P.c.attributes, P.c.tax_class, P.c.version)
    for part in chunks(pids):
        res = await session.execute(select(*prod_cols).where(where_in(session, P.c.id, part)).order_by(P.c.id).with_for_update())
        products_by_id.update({p.id: p for p in res.all()})
    products_by_handle = {p.handle: p for p in products_by_id.values()}
    missing_handles = [h for h in handles if h not in products_by_handle]
    for part in chunks(missing_handles):
        res = await session.execute(select(*prod_cols).where(where_in(session, P.c.handle, part)).order_by(P.c.id).with_for_update())
        for p in res.all():
            products_by_handle[p.handle] = p
            products_by_id[p.id] = p
    for r in good:
        v = existing.get(r.sku)
        if v is not None:
            own = products_by_id[v.product_id].handle
            if r.data.product_handle and r.data.product_handle != own:
                r.fail("product_handle", f"SKU {r.sku!r} belongs to product {own!r}; variants cannot move between products.")
            r.handle = own

    # ---- channels
    codes = {c for r in good if r.given.get("channels") for c in r.given["channels"]}
    known = await existing_channels(session, codes)
    for r in good:
        for i, c in enumerate(r.given.get("channels") or []):
            if c not in known:
                r.fail(f"channels[{i}]", f"Unknown channel {c!r}.")

    # ---- gtins: unique in the file and against other variants
    gtin_rows = [r for r in good if not r.errors and r.given.get("gtin")]
    seen_gtin: dict[str, Row] = {}
    for r in gtin_rows:
        key = r.given["gtin"].lstrip("0")
        other = seen_gtin.get(key)
        if other is not None and other.sku != r.sku:
            r.fail("gtin", f"GTIN {r.given['gtin']!r} is also given to SKU {other.sku!r} (row {other.line}) in this import.")
        else:
            seen_gtin[key] = r
    forms = {f: r.given["gtin"] for r in gtin_rows if not r.errors for f in gtin_forms(r.given["gtin"])}
    owners: dict[str, str] = {}  # gtin as given in the row -> sku that holds it
    form_list = sorted(forms)
    for part in chunks(form_list):
        res = await session.execute(select(V.c.gtin, V.c.sku).where(where_in(session, V.c.gtin, part)))
        for g, sku in res.all():
            owners[forms[g]] = sku
    for r in gtin_rows:
        if r.errors:
            continue
        owner = owners.get(r.given["gtin"])
        if owner is not None and owner != r.sku:
            r.fail("gtin", f"GTIN {r.given['gtin']!r} is already used by SKU {owner!r}.")
    good = [r for r in good if not r.errors]

    # ---- group into products
    plans: dict[str, ProductPlan] = {}
    for r in good:
        plans.setdefault(r.handle, ProductPlan(handle=r.handle)).rows.append(r)
    bundle_skus_in_file = set()
    for plan in plans.values():
        plan.existing = products_by_handle.get(plan.handle)
        if plan.existing is not None:
            ptype = plan.existing.type
            for r in plan.rows:
                if ptype == "standard" and r.data.components is not None:
                    r.fail("components", f"Product {plan.handle!r} is not a bundle; only bundles have components.")
                if ptype == "bundle" and r.sku not in existing:
                    r.fail("sku", f"Product {plan.handle!r} is a bundle; a bundle has exactly one variant.")
        else:
            # one row with components makes a bundle; a product named by several rows is a standard one
            if len(plan.rows) == 1 and plan.rows[0].data.components is not None:
                bundle_skus_in_file.add(plan.rows[0].sku)
            elif len(plan.rows) > 1:
                for r in plan.rows:
                    if r.data.components is not None:
                        r.fail("components", f"{len(plan.rows)} rows name product {plan.handle!r}; a bundle product "
                                             "has exactly one variant, and standard products have no components.")
            if not any(r.data.product_title for r in plan.rows):
                for r in plan.rows:
                    r.fail("product_title", f"Required to create product {plan.handle!r}.")
        for r in plan.rows:
            if r.data.components is not None and r.data.track_inventory is False:
                r.fail("track_inventory", "A bundle's stock is derived from its components; it cannot be untracked.")
        plan.rows = [r for r in plan.rows if not r.errors]

    # ---- price and stock columns: checked before anything is written
    if extras is not None:
        facts = []
        for plan in plans.values():
            for r in plan.rows:
                v = existing.get(r.sku)
                is_bundle = v.is_bundle if v is not None else r.data.components is not None
                tracked = r.given.get("track_inventory", v.track_inventory if v is not None else True)
                facts.append((r, is_bundle, tracked))
        await extras.check(session, facts)
        for plan in plans.values():
            plan.rows = [r for r in plan.rows if not r.errors]
            if plan.existing is None and plan.rows and not any(r.data.product_title for r in plan.rows):
                for r in plan.rows:  # the row that gave the product's title failed
                    r.fail("product_title", f"Required to create product {plan.handle!r}.")
                plan.rows = []

    # ---- bundle components: exist (stored or created by this file), are not bundles, not itself, no repeats
    new_standard = {r.sku for p in plans.values() for r in p.rows if r.sku not in existing and r.data.components is None}
    for plan in plans.values():
        for r in plan.rows:
            comps = r.data.components
            if comps is None:
                continue
            seen = set()
            for j, c in enumerate(comps):
                f = f"components[{j}].sku"
                if c.sku == r.sku:
                    r.fail(f, "A bundle cannot contain itself.")
                elif c.sku in seen:
                    r.fail(f, f"Component {c.sku!r} is listed twice.")
                elif c.sku in existing:
                    if existing[c.sku].is_bundle:
                        r.fail(f, f"{c.sku!r} is a bundle; bundles cannot contain bundles.")
                elif c.sku in bundle_skus_in_file:
                    r.fail(f, f"{c.sku!r} is a bundle; bundles cannot contain bundles.")
                elif c.sku not in new_standard:
                    r.fail(f, f"Unknown SKU {c.sku!r}.")
                seen.add(c.sku)
        plan.rows = [r for r in plan.rows if not r.errors]

    # ---- existing bundle components of bundle rows
    bundle_ids = [existing[r.sku].id for p in plans.values() for r in p.rows
                  if r.sku in existing and existing[r.sku].is_bundle]
    current_comps: dict[str, set] = {}
    for part in chunks(bundle_ids):
        res = await session.execute(select(BC.c.bundle_variant_id, BC.c.component_sku, BC.c.quantity)
                                    .where(where_in(session, BC.c.bundle_variant_id, part)))
        for bid, csku, q in res.all():
            current_comps.setdefault(bid, set()).add((csku, q))

    # ---- current channels and max positions of the existing products we touch (the channels of
    # each: compared with a file's, and named in its event like product events of the API)
    current_channels: dict[str, set] = {}
    need_channels = [p.existing.id for p in plans.values() if p.existing is not None and p.rows]
    for part in chunks(need_channels):
        res = await session.execute(select(PC.c.product_id, PC.c.channel_code).where(where_in(session, PC.c.product_id, part)))
        for pid, code in res.all():
            current_channels.setdefault(pid, set()).add(code)
    max_pos: dict[str, int] = {}
    need_pos = [p.existing.id for p in plans.values()
                if p.existing is not None and any(r.sku not in existing for r in p.rows)]
    for part in chunks(need_pos):
        res = await session.execute(select(V.c.product_id, func.max(V.c.position)).where(where_in(session, V.c.product_id, part))
                                    .group_by(V.c.product_id))
        max_pos.update({pid: m for pid, m in res.all() if m is not None})

    # ---- decide
    now = clock.now()
    new_products, product_updates, channel_deletes, channel_inserts = [], [], [], []
    new_variants, variant_updates, comp_deletes, comp_inserts = [], [], [], []
    events = []
    variant_ids = {sku: v.id for sku, v in existing.items()}
    pending_comps: list[tuple[str, list[ImportComponent]]] = []
    products_created = products_updated = 0
    product_ids = iter(new_ids("prod", sum(1 for p in plans.values() if p.existing is None)))
    variant_ids_new = iter(new_ids("var", sum(1 for p in plans.values() for r in p.rows if r.sku not in existing)))

    for plan in plans.values():
        if not plan.rows:
            continue
        # product-level values: the first row that gives one wins
        for r in plan.rows:
            for f in PRODUCT_FIELDS:
                if f in r.given and f not in plan.sources:
                    plan.sources[f] = r.line
                    plan.values[PRODUCT_COLUMN[f]] = r.given[f]
            if "channels" in r.given and plan.channels is None:
                plan.channels = r.given["channels"]
                plan.channels_source = r.line
        changed_sources: set[int] = set()
        if plan.existing is None:
            plan.id = next(product_ids)
            is_bundle = plan.rows[0].data.components is not None
            row = {
                "id": plan.id, "handle": plan.handle, "type": "bundle" if is_bundle else "standard",
                "title": plan.values.get("title"), "description": plan.values.get("description"),
                "status": plan.values.get("status") or "draft", "category": plan.values.get("category"),
                "attributes": plan.values.get("attributes") or {}, "tax_class": plan.values.get("tax_class") or "standard",
                "version": 1, "created_at": now, "updated_at": now,
            }
            new_products.append(row)
            if plan.channels:
                channel_inserts += [{"product_id": plan.id, "channel_code": c} for c in plan.channels]
            product_title = row["title"]
            position = -1
        else:
            p = plan.existing
            plan.id = p.id
            changed = {}
            for col, value in plan.values.items():
                if getattr(p, col) != value:
                    changed[col] = value
                    plan.changed_fields.append(col)
                    src_field = next(f for f, c in PRODUCT_COLUMN.items() if c == col)
                    changed_sources.add(plan.sources[src_field])
            plan.values = changed
            if plan.channels is not None and set(plan.channels) != current_channels.get(p.id, set()):
                plan.changed_fields.append("channels")
                changed_sources.add(plan.channels_source)
                channel_deletes.append(p.id)
                channel_inserts += [{"product_id": p.id, "channel_code": c} for c in plan.channels]
            product_title = changed.get("title", p.title)
            position = max_pos.get(p.id, -1)

        for r in plan.rows:
            g = r.given
            v = existing.get(r.sku)
            if v is None:
                position += 1
                vid = next(variant_ids_new)
                variant_ids[r.sku] = vid
                options = g.get("options") or {}
                title = g.get("title") or (" / ".join(options.values())[:500] if options else product_title)
                new_variants.append({
                    "id": vid, "product_id": plan.id, "sku": r.sku, "gtin": g.get("gtin"), "title": title,
                    "options": options, "attributes": g.get("attributes") or {},
                    "weight_grams": g.get("weight_grams"),
                    "track_inventory": True if g.get("track_inventory") is None else g["track_inventory"],
                    "is_bundle": r.data.components is not None, "position": position,
                    "created_at": now, "updated_at": now,
                })
                if r.data.components:
                    pending_comps.append((vid, r.data.components))
                r.outcome = "created"
                plan.variants_created.append(r.sku)
                continue
            vchanged = {f: g[f] for f in VARIANT_FIELDS if f in g and getattr(v, f) != g[f]}
            comps_changed = False
            if v.is_bundle and r.data.components is not None:
                wanted_comps = {(c.sku, c.quantity) for c in r.data.components}
                if wanted_comps != current_comps.get(v.id, set()):
                    comps_changed = True
                    comp_deletes.append(v.id)
                    pending_comps.append((v.id, r.data.components))
            if vchanged or comps_changed:
                full = {f: getattr(v, f) for f in VARIANT_FIELDS}
                full.update(vchanged)
                full.update(b_id=v.id, updated_at=now)
                variant_updates.append(full)
                r.outcome = "updated"
                plan.variants_updated.append(r.sku)
            elif r.line in changed_sources:
                r.outcome = "updated"
            else:
                r.outcome = "unchanged"

        if plan.existing is None:
            products_created += 1
            events.append(_event("product.created", plan, 1, new_products[-1], channels=plan.channels or []))
        elif plan.changed_fields or plan.variants_created or plan.variants_updated:
            p = plan.existing
            full = {c: getattr(p, c) for c in ("title", "description", "status", "category", "attributes", "tax_class")}
            full.update(plan.values)
            full.update(b_id=p.id, version=p.version + 1, updated_at=now)
            product_updates.append(full)
            products_updated += 1
            channels = plan.channels if plan.channels is not None else current_channels.get(p.id, ())
            events.append(_event("product.updated", plan, p.version + 1, full, p.handle, channels=channels))

    for bid, comps in pending_comps:
        comp_inserts += [{"bundle_variant_id": bid, "component_variant_id": variant_ids[c.sku],
                          "component_sku": c.sku, "quantity": c.quantity} for c in comps]

    # ---- write
    await bulk_insert(session, P, new_products)
    if product_updates:
        stmt = update(P).where(P.c.id == bindparam("b_id"))  # SET from the parameter keys (executemany)
        for part in chunks(product_updates, WRITE_CHUNK):
            await session.execute(stmt, part)
    for part in chunks(channel_deletes):
        await session.execute(delete(PC).where(where_in(session, PC.c.product_id, part)))
    await bulk_insert(session, PC, channel_inserts)
    await bulk_insert(session, V, new_variants)
    if variant_updates:
        stmt = update(V).where(V.c.id == bindparam("b_id"))
        for part in chunks(variant_updates, WRITE_CHUNK):
            await session.execute(stmt, part)
    for part in chunks(comp_deletes):
        await session.execute(delete(BC).where(where_in(session, BC.c.bundle_variant_id, part)))
    await bulk_insert(session, BC, comp_inserts)
    for part in chunks(events, WRITE_CHUNK):
        await emit_many(session, part)

    # ---- prices and stock of the rows written
    done = [r for r in rows if not r.errors]
    written = await extras.write(session, done) if extras is not None else {}

    # ---- counts
    counts = dict.fromkeys(COUNTS, 0)
    for r in rows:
        if r.errors:
            counts["failed"] += 1
        else:
            counts[r.outcome] += 1
    counts.update(products_created=products_created, products_updated=products_updated, **written)
    return counts


def _event(type_: str, plan: ProductPlan, version: int, values: dict, handle: str | None = None, *,
           channels) -> dict:
    """Import events are compact (a 50,000-row import would otherwise write megabytes of
    product JSON): what changed, by sku; GET /v1/products/{id} has the full product. Like the
    API's product events they name the product's `channels` and `status` after the change, which
    decide which channel keys read them (app/events/service.py `audience`)."""
    return {"type": type_, "data": {
        "id": plan.id, "object": "product", "handle": handle or plan.handle, "title": values.get("title"),
        "status": values.get("status"), "channels": sorted(channels), "version": version, "source": "import",
        "changed": plan.changed_fields, "variants_created": plan.variants_created,
        "variants_updated": plan.variants_updated,
    }}
