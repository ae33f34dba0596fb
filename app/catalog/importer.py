"""`POST /v1/catalog/import`: NDJSON or CSV, one variant a row, upsert by sku.

Pipeline (all set-based):
1. parse the file into rows (NDJSON: one object a line; CSV: a header, `option.*`,
   `attr.*`, `product_attr.*` columns, pipe-separated `channels` and `components`);
2. validate every row on its own (pydantic) -> per-row errors;
3. load what exists in a few bulk queries (variants by sku in any case, products by handle/id,
   gtin owners, channels, bundle components), 5,000 keys per IN list;
4. decide in Python, per product group (rows sharing `product_handle`), what is
   created, updated or unchanged;
5. write with a handful of multi-row INSERT / executemany UPDATE statements, the
   events with one INSERT, and commit once.

Idempotent: a row whose values equal what is stored changes nothing (no version
bump, no event). Good rows land even when other rows fail.
"""
import csv
import io
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

import asyncpg
import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import Text, bindparam, cast, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import sqltypes
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.codes import gtin_forms, is_handle, slugify
from app.catalog.schemas import (
    AttributesText, CategoryText, ChannelCodes, DescriptionText, Gtin, Handle, OptionsText, QuantityText, Sku, Status, TaxClass,
    TitleText,
)
from app.catalog.service import BC, P, PC, V, existing_channels, sku_key, sku_lower
from app.core.sql import chunks, where_in
from app.core import clock
from app.core import cache
from app.core.db import is_postgres
from app.core.ids import new_ids
from app.core.errors import ApiError, field_path
from app.core.schemas import LaxNonNegInt
from app.events.service import emit_many

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 1000
WRITE_CHUNK = 2000
ANALYZE_AFTER = 5000  # variants created

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
                "application/jsonlines")
CSV_TYPES = ("text/csv", "application/csv")

PRODUCT_FIELDS = ("product_title", "description", "status", "category", "tax_class", "product_attributes")
# import row field -> products column
PRODUCT_COLUMN = {"product_title": "title", "description": "description", "status": "status", "category": "category",
                  "tax_class": "tax_class", "product_attributes": "attributes"}
VARIANT_FIELDS = ("title", "gtin", "options", "attributes", "weight_grams", "track_inventory")
NULLABLE = {"description", "category", "gtin", "weight_grams"}


def _split_pipes(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split("|") if p.strip()]
    return value


def _parse_components(value: Any) -> Any:
    """'WINE-RIES-075:1|CHEESE-GOUDA:2' -> [{sku, quantity}] (quantity defaults to 1)."""
    if not isinstance(value, str):
        return value
    out = []
    for part in value.split("|"):
        part = part.strip()
        if not part:
            continue
        sku, sep, qty = part.rpartition(":")
        if sep and qty.strip().isdigit():
            out.append({"sku": sku.strip(), "quantity": qty.strip()})
        else:
            out.append({"sku": part, "quantity": 1})
    return out


class ImportComponent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    quantity: QuantityText = 1


class ImportRow(BaseModel):
    """One variant. (Not an app.core.schemas.Input: NUL characters and invalid Unicode are refused
    by the parser for the whole file, so the per-row walk is skipped on this bulk path.)"""

    model_config = ConfigDict(extra="forbid")
    sku: Sku
    product_handle: Handle | None = None
    product_title: TitleText | None = None
    description: DescriptionText | None = None
    status: Status | None = None
    category: CategoryText | None = None
    tax_class: TaxClass | None = None
    channels: Annotated[ChannelCodes, BeforeValidator(_split_pipes)] | None = None
    product_attributes: AttributesText | None = None
    title: TitleText | None = None
    gtin: Gtin | None = None
    options: OptionsText | None = None
    attributes: AttributesText | None = None
    weight_grams: LaxNonNegInt | None = None
    track_inventory: bool | None = None
    components: Annotated[list[ImportComponent], BeforeValidator(_parse_components), Field(min_length=1, max_length=50)] | None = None


CSV_COLUMNS = set(ImportRow.model_fields) - {"options", "attributes", "product_attributes"}
CSV_PREFIXES = {"option.": "options", "attr.": "attributes", "product_attr.": "product_attributes"}


loads = orjson.loads


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


@dataclass(slots=True)
class Row:
    line: int
    sku: str | None
    data: ImportRow | None = None
    given: dict[str, Any] = field(default_factory=dict)  # fields present (null = clear for NULLABLE)
    errors: list[dict[str, str]] = field(default_factory=list)
    handle: str | None = None
    outcome: str | None = None  # created | updated | unchanged

    def fail(self, fld: str, message: str) -> None:
        self.errors.append({"field": fld, "message": message})


# --------------------------------------------------------------------------- parsing

def content_kind(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    if base in NDJSON_TYPES:
        return "ndjson"
    if base in CSV_TYPES:
        return "csv"
    raise ApiError(415, "unsupported_media_type",
                   "Send the import as application/x-ndjson (one JSON object per line) or text/csv.")


def parse_ndjson(body: bytes) -> list[tuple[int, str | None, dict | None, str | None]]:
    """-> [(line, sku?, raw dict?, error?)]"""
    out = []
    for n, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)  # refuses invalid UTF-8 and lone surrogates
        except orjson.JSONDecodeError:
            out.append((n, None, None, "Invalid JSON."))
            continue
        if not isinstance(obj, dict):
            out.append((n, None, None, "Each line must be a JSON object."))
            continue
        if b"\\u0000" in line and _has_nul(obj):
            sku = obj.get("sku")
            out.append((n, sku if isinstance(sku, str) else None, None, "NUL characters (\\u0000) are not allowed."))
            continue
        sku = obj.get("sku")
        out.append((n, sku if isinstance(sku, str) else None, obj, None))
    return out


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def parse_csv(body: bytes) -> list[tuple[int, str | None, dict | None, str | None]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(422, "validation_error", "The CSV file is not UTF-8.", errors=[{"field": "body", "message": "Not UTF-8."}]) from None
    if "\x00" in text:
        raise ApiError(422, "validation_error", "The CSV file contains NUL characters.",
                       errors=[{"field": "body", "message": "NUL characters are not allowed."}])
    try:
        dialect = csv.Sniffer().sniff(text[:4096].split("\n", 1)[0], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ApiError(422, "validation_error", "The CSV file is empty.", errors=[{"field": "body", "message": "Empty file."}]) from None
    except csv.Error as exc:
        raise ApiError(422, "validation_error", f"Malformed CSV: {exc}.", errors=[{"field": "body", "message": str(exc)}]) from None
    header = [h.strip() for h in header]
    columns: list[tuple[str, str | None]] = []  # (field, sub-key)
    bad = []
    for i, h in enumerate(header):
        prefix = next((p for p in CSV_PREFIXES if h.startswith(p) and len(h) > len(p)), None)
        if prefix:
            columns.append((CSV_PREFIXES[prefix], h[len(prefix):]))
        elif h in CSV_COLUMNS:
            columns.append((h, None))
        else:
            bad.append({"field": f"header[{i}]", "message": f"Unknown column {h!r}."})
    seen = [h for h in header]
    dupes = sorted({h for h in seen if seen.count(h) > 1})
    bad += [{"field": "header", "message": f"Column {h!r} appears twice."} for h in dupes]
    if "sku" not in header:
        bad.append({"field": "header", "message": "The column 'sku' is required."})
    if bad:
        raise ApiError(422, "validation_error", bad[0]["message"], errors=bad)
    out = []
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ApiError(422, "validation_error", f"Malformed CSV near line {line}: {exc}.",
                           errors=[{"field": "body", "message": str(exc)}]) from None
        start, line = line, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            out.append((start, None, None, f"The row has {len(cells)} cells; the header has {len(columns)}."))
            continue
        raw: dict[str, Any] = {}
        for (fld, sub), cell in zip(columns, cells):
            cell = cell.strip()
            if cell == "":
                continue
            if sub is None:
                raw[fld] = cell
            else:
                raw.setdefault(fld, {})[sub] = cell
        sku = raw.get("sku")
        out.append((start, sku, raw, None))
    return out


def validate_rows(parsed) -> list[Row]:
    rows = []
    validate = ImportRow.model_validate
    for line, sku, raw, error in parsed:
        row = Row(line=line, sku=sku[:100] if isinstance(sku, str) else None)
        rows.append(row)
        if error:
            row.fail("row", error)
            continue
        try:
            data = validate(raw)
        except ValidationError as exc:
            for e in exc.errors():
                msg = "Unknown field." if e["type"] == "extra_forbidden" else "Field required." if e["type"] == "missing" else e["msg"]
                path = field_path(e["loc"])
                row.fail("row" if path == "body" else path, msg)
            continue
        row.data = data
        row.sku = data.sku
        given = {}
        for f in data.model_fields_set:
            value = getattr(data, f)
            if value is None and f not in NULLABLE:
                continue  # null on a required-ish field = not given
            given[f] = value
        row.given = given
    return rows


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


async def run_import(session: AsyncSession, body: bytes, kind: str) -> dict:
    if not body.strip():
        raise ApiError(422, "validation_error", "The import file is empty.", errors=[{"field": "body", "message": "Empty file."}])
    parsed = parse_ndjson(body) if kind == "ndjson" else parse_csv(body)
    if not parsed:
        raise ApiError(422, "validation_error", "The import file has no rows.", errors=[{"field": "body", "message": "No rows."}])
    if len(parsed) > MAX_ROWS:
        raise ApiError(413, "payload_too_large", f"At most {MAX_ROWS} rows per import; split the file.")
    rows = validate_rows(parsed)
    postgres = is_postgres(session)
    if postgres:
        # Plan every bulk statement for its actual parameters: a cached generic plan made while
        # the tables were small (the first chunks of a first import) would scan them sequentially.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        result = await _apply(session, rows)
    except IntegrityError:
        raise ApiError(409, "conflict", "A concurrent change touched the same SKUs, GTINs or handles; retry the import.") from None
    if postgres and result["created"] >= ANALYZE_AFTER:
        # Fresh statistics (and, through the invalidation, fresh cached plans in every connection)
        # instead of waiting for autovacuum after a bulk load.
        await session.execute(text("ANALYZE products, variants, product_channels, bundle_components"))
    return result


async def _apply(session: AsyncSession, rows: list[Row]) -> dict:
    # ---- duplicates inside the file
    first_line: dict[str, int] = {}  # by sku_key: SKUs differing only in case are the same SKU
    for r in rows:
        if r.data is None:
            continue
        key = sku_key(r.sku)
        if key in first_line:
            r.fail("sku", f"SKU {r.sku!r} appears more than once in this import (first at row {first_line[key]}).")
        else:
            first_line[key] = r.line
    good = [r for r in rows if not r.errors]

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

    # ---- current channels and max positions of the existing products we touch
    current_channels: dict[str, set] = {}
    need_channels = [p.existing.id for p in plans.values()
                     if p.existing is not None and p.rows and any("channels" in r.given for r in p.rows)]
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
            events.append(_event("product.created", plan, 1, new_products[-1]))
        elif plan.changed_fields or plan.variants_created or plan.variants_updated:
            p = plan.existing
            full = {c: getattr(p, c) for c in ("title", "description", "status", "category", "attributes", "tax_class")}
            full.update(plan.values)
            full.update(b_id=p.id, version=p.version + 1, updated_at=now)
            product_updates.append(full)
            products_updated += 1
            events.append(_event("product.updated", plan, p.version + 1, full, p.handle))

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

    # ---- report
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    failed = []
    for r in rows:
        if r.errors:
            failed.append(r)
        else:
            counts[r.outcome] += 1
    return {
        **counts, "failed": len(failed), "products_created": products_created, "products_updated": products_updated,
        "errors": [{"row": r.line, "sku": r.sku, "errors": r.errors} for r in failed[:MAX_REPORTED_ERRORS]],
        "errors_truncated": len(failed) > MAX_REPORTED_ERRORS,
    }


def _event(type_: str, plan: ProductPlan, version: int, values: dict, handle: str | None = None) -> dict:
    """Import events are compact (a 50,000-row import would otherwise write megabytes of
    product JSON): what changed, by sku; GET /v1/products/{id} has the full product."""
    return {"type": type_, "data": {
        "id": plan.id, "object": "product", "handle": handle or plan.handle, "title": values.get("title"),
        "status": values.get("status"), "version": version, "source": "import",
        "changed": plan.changed_fields, "variants_created": plan.variants_created,
        "variants_updated": plan.variants_updated,
    }}
