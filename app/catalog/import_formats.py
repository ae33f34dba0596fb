"""Import files -> rows: NDJSON, our CSV, and Shopify's product CSV export.

Pure functions: no database, no event loop, no clock. The import runs `parse` in a worker
thread (`anyio.to_thread.run_sync`), so a 70,000-row file never holds up the requests the
server answers meanwhile; `import_rows.prepare` validates what it returns.

Our format, one variant a row: the fields of `import_rows.ImportRow`; in CSV `option.<name>`,
`attr.<name>` and `product_attr.<name>` columns, pipe-separated `channels` and `components`.

Shopify's product CSV export (detected by its header: `Handle` and `Variant SKU`, `Option1 Name`
or `Variant Price`) is read as Shopify writes it: the rows of one Handle are one product, the
first of them carries the product columns, the others only variant columns; rows without any
variant column (extra images) are skipped. See SHOPIFY_COLUMNS for the mapping.

Columns (CSV) or fields (NDJSON) the import does not read are not an error on every row: they
are listed once, in `unknown_columns`.
"""
import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from app.catalog.import_rows import CSV_COLUMNS, CSV_PREFIXES, FIELDS, ImportOptions, Parsed, ParsedFile
from app.core.errors import ApiError

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
                "application/jsonlines")
CSV_TYPES = ("text/csv", "application/csv")


def content_kind(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    if base in NDJSON_TYPES:
        return "ndjson"
    if base in CSV_TYPES:
        return "csv"
    raise ApiError(415, "unsupported_media_type",
                   "Send the import as application/x-ndjson (one JSON object per line) or text/csv.")


def _file_error(message: str, field: str = "body") -> ApiError:
    return ApiError(422, "validation_error", message, errors=[{"field": field, "message": message}])


def parse(body: bytes, kind: str, options: ImportOptions) -> ParsedFile:
    """The file's rows, unvalidated (422 for what is wrong with the whole file)."""
    if not body.strip():
        raise _file_error("The import file is empty.")
    parsed = _parse_ndjson(body) if kind == "ndjson" else _parse_csv(body, options)
    if not parsed.rows:
        raise _file_error("The import file has no rows.")
    return parsed


# --------------------------------------------------------------------------- NDJSON

def _parse_ndjson(body: bytes) -> ParsedFile:
    out: list[Parsed] = []
    unknown: dict[str, None] = {}
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
        sku = obj.get("sku")
        sku = sku if isinstance(sku, str) else None
        if b"\\u0000" in line and _has_nul(obj):
            out.append((n, sku, None, "NUL characters (\\u0000) are not allowed."))
            continue
        if not FIELDS.issuperset(obj):
            for k in obj:
                if k not in FIELDS:
                    unknown.setdefault(k[:100])
            obj = {k: v for k, v in obj.items() if k in FIELDS}
        out.append((n, sku, obj, None))
    return ParsedFile("ndjson", out, unknown_columns=list(unknown)[:100])


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# --------------------------------------------------------------------------- CSV

def _reader(body: bytes) -> tuple[Any, list[str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error("The CSV file is not UTF-8.") from None
    if "\x00" in text:
        raise _file_error("The CSV file contains NUL characters.")
    try:
        delimiter = csv.Sniffer().sniff(text[:4096].split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise _file_error("The CSV file is empty.") from None
    except csv.Error as exc:
        raise _file_error(f"Malformed CSV: {exc}.") from None
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        errors = [{"field": "header", "message": f"Column {h!r} appears twice."} for h in dupes]
        raise ApiError(422, "validation_error", errors[0]["message"], errors=errors)
    return reader, header


def _records(reader, width: int):
    """-> (line, cells | None, error | None) for every non-blank record; `line` is the physical
    line it starts on (the header is line 1)."""
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _file_error(f"Malformed CSV near line {line}: {exc}.") from None
        start, line = line, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > width:
            yield start, None, f"The row has {len(cells)} cells; the header has {width}."
            continue
        yield start, cells, None


def is_shopify(header: list[str]) -> bool:
    return "Handle" in header and bool({"Variant SKU", "Option1 Name", "Variant Price"} & set(header))


def _parse_csv(body: bytes, options: ImportOptions) -> ParsedFile:
    reader, header = _reader(body)
    if is_shopify(header):
        return _parse_shopify(reader, header, options)
    columns: list[tuple[str | None, str | None]] = []  # (field, sub-key); None: not read
    unknown = []
    for h in header:
        prefix = next((p for p in CSV_PREFIXES if h.startswith(p) and len(h) > len(p)), None)
        if prefix:
            columns.append((CSV_PREFIXES[prefix], h[len(prefix):]))
        elif h in CSV_COLUMNS:
            columns.append((h, None))
        else:
            columns.append((None, None))
            if h:
                unknown.append(h[:100])
    bad = []
    if "sku" not in header:
        bad.append({"field": "header", "message": "The column 'sku' is required."})
    if "price" in header and "price_list" not in header and not options.price_list:
        bad.append({"field": "price_list", "message": "The file has a 'price' column: give a 'price_list' column "
                                                      "or ?price_list=<code>."})
    if "stock" in header and "location" not in header and not options.location:
        bad.append({"field": "location", "message": "The file has a 'stock' column: give a 'location' column "
                                                    "or ?location=<code>."})
    if bad:
        raise ApiError(422, "validation_error", bad[0]["message"], errors=bad)
    out: list[Parsed] = []
    for line, cells, error in _records(reader, len(columns)):
        if error:
            out.append((line, None, None, error))
            continue
        raw: dict[str, Any] = {}
        for (fld, sub), cell in zip(columns, cells):
            if fld is None:
                continue
            cell = cell.strip()
            if cell == "":
                continue
            if sub is None:
                raw[fld] = cell
            else:
                raw.setdefault(fld, {})[sub] = cell
        out.append((line, raw.get("sku"), raw, None))
    return ParsedFile("csv", out, unknown_columns=unknown)


# --------------------------------------------------------------------------- Shopify

# Shopify column -> what it becomes (documented in the route's description too).
SHOPIFY_COLUMNS = {
    "Handle": "product_handle",
    "Title": "product_title",
    "Body (HTML)": "description",
    "Vendor": "product_attributes.vendor",
    "Product Category": "category ('A > B > C' becomes 'A/B/C')",
    "Type": "product_attributes.type",
    "Tags": "product_attributes.tags (a list)",
    "Published": "status when there is no Status column (true: active, false: draft)",
    "Status": "status (active, draft, archived)",
    "Option1 Name": "options (the name, in lower case, from the handle's first row)",
    "Option1 Value": "options",
    "Option2 Name": "options", "Option2 Value": "options",
    "Option3 Name": "options", "Option3 Value": "options",
    "Variant SKU": "sku (required: variants are matched by SKU)",
    "Variant Grams": "weight_grams (0: not given)",
    "Variant Inventory Tracker": "track_inventory (empty: not tracked)",
    "Variant Inventory Qty": "stock at ?location= (negative counts become 0)",
    "Variant Price": "price in ?price_list=",
    "Variant Barcode": "gtin (checked like every GTIN)",
}
SHOPIFY_ALIASES = {  # our field -> the Shopify column, for the error reports
    "sku": "Variant SKU", "product_handle": "Handle", "product_title": "Title", "description": "Body (HTML)",
    "category": "Product Category", "status": "Status", "gtin": "Variant Barcode", "weight_grams": "Variant Grams",
    "price": "Variant Price", "stock": "Variant Inventory Qty", "options": "Option1 Value",
    "product_attributes": "Vendor", "track_inventory": "Variant Inventory Tracker",
}
_VARIANT_COLUMNS = ("Option1 Value", "Option2 Value", "Option3 Value", "Variant SKU", "Variant Price",
                    "Variant Barcode", "Variant Grams", "Variant Inventory Qty")
_CATEGORY_JUNK = re.compile(r"[^\w .&'\-]+")


def _shopify_category(value: str) -> str | None:
    parts = [" ".join(_CATEGORY_JUNK.sub(" ", p).split()) for p in value.split(">")]
    parts = [p for p in parts if p and (p[0].isalnum() or p[0] == "_")]
    return "/".join(parts)[:200] or None


def _int_text(value: str) -> int | None:
    """'200', '200.0', '-3' -> int; None when it is not a number."""
    try:
        return int(Decimal(value).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


@dataclass(slots=True)
class _Handle:
    option_names: list[str | None]
    product: dict[str, Any]  # product fields, from the handle's first row


def _parse_shopify(reader, header: list[str], options: ImportOptions) -> ParsedFile:
    index = {h: i for i, h in enumerate(header)}
    unknown = [h[:100] for h in header if h and h not in SHOPIFY_COLUMNS]
    warnings = []
    use_price = "Variant Price" in index and options.price_list is not None
    use_stock = "Variant Inventory Qty" in index and options.location is not None
    if "Variant Price" in index and not use_price:
        warnings.append("Variant Price was not imported: give ?price_list=<code> to import prices.")
    if "Variant Inventory Qty" in index and not use_stock:
        warnings.append("Variant Inventory Qty was not imported: give ?location=<code> to import stock.")
    has_status = "Status" in index
    tracker = index.get("Variant Inventory Tracker")
    handles: dict[str, _Handle] = {}
    out: list[Parsed] = []
    negative = 0

    for line, cells, error in _records(reader, len(header)):
        if error:
            out.append((line, None, None, error))
            continue

        def cell(name: str) -> str:
            i = index.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        handle = cell("Handle")
        if not handle:
            out.append((line, cell("Variant SKU") or None, None, ("product_handle", "Handle is empty.")))
            continue
        state = handles.get(handle)
        if state is None:
            state = handles[handle] = _Handle([cell(f"Option{i} Name") or None for i in (1, 2, 3)], {})
            product: dict[str, Any] = {}
            if cell("Title"):
                product["product_title"] = cell("Title")
            if cell("Body (HTML)"):
                product["description"] = cell("Body (HTML)")
            if cell("Product Category"):
                product["category"] = _shopify_category(cell("Product Category"))
            status = cell("Status").lower() if has_status else ""
            if status:
                product["status"] = status
            elif not has_status and cell("Published"):
                product["status"] = "active" if cell("Published").lower() == "true" else "draft"
            attrs = {}
            if cell("Vendor"):
                attrs["vendor"] = cell("Vendor")
            if cell("Type"):
                attrs["type"] = cell("Type")
            if cell("Tags"):
                attrs["tags"] = [t.strip() for t in cell("Tags").split(",") if t.strip()]
            if attrs:
                product["product_attributes"] = attrs
            state.product = {k: v for k, v in product.items() if v is not None}
        if not any(cell(c) for c in _VARIANT_COLUMNS):
            continue  # an image row
        sku = cell("Variant SKU")
        if not sku:
            out.append((line, None, None, ("sku", f"Variant SKU is empty (product {handle!r}): every variant needs "
                                                  "a SKU here, as stock, prices and orders name variants by SKU.")))
            continue
        # the handle's product columns go with each of its variants, so that the product is
        # still created when the row that carried them fails
        raw: dict[str, Any] = {"sku": sku, "product_handle": handle, **state.product}
        opts = {}
        for i in (1, 2, 3):
            value = cell(f"Option{i} Value")
            if not value:
                continue
            name = cell(f"Option{i} Name") or state.option_names[i - 1]
            if name is None:
                opts = None
                out.append((line, sku, None, ("options", f"Option{i} Value without an Option{i} Name on the first "
                                                         f"row of {handle!r}.")))
                break
            if name == "Title" and value == "Default Title":
                continue  # Shopify's single variant of a product without options
            opts[name.strip().lower()] = value
        if opts is None:
            continue
        if opts:
            raw["options"] = opts
        grams = cell("Variant Grams")
        if grams:
            g = _int_text(grams)
            if g != 0:  # 0 is Shopify's "not given"
                raw["weight_grams"] = g if g is not None else grams
        barcode = cell("Variant Barcode").lstrip("'")
        if barcode:
            raw["gtin"] = barcode
        tracked = True
        if tracker is not None:
            tracked = bool(cell("Variant Inventory Tracker"))
            raw["track_inventory"] = tracked
        if use_price and cell("Variant Price"):
            raw["price"] = cell("Variant Price")
        if use_stock and tracked and cell("Variant Inventory Qty"):
            qty = _int_text(cell("Variant Inventory Qty"))
            if qty is not None and qty < 0:
                negative += 1
                qty = 0
            raw["stock"] = qty if qty is not None else cell("Variant Inventory Qty")
        out.append((line, sku, raw, None))
    if negative:
        warnings.append(f"{negative} variant(s) had a negative Variant Inventory Qty; their stock was set to 0.")
    return ParsedFile("shopify", out, unknown_columns=unknown, warnings=warnings, aliases=SHOPIFY_ALIASES)
