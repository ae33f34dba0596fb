"""Import rows: what one row of a catalog import may say, and its validation.

`ImportRow` is one variant (our field names; app/catalog/import_formats.py maps every file
format onto them). Besides the catalog fields a row may carry
* `price` — the unit price as a decimal in the price list's currency ("19.99"; a JSON number
  is read the same way), for the price list of the row's `price_list` or `?price_list=`;
* `stock` — the on-hand count at the row's `location` or `?location=`.

`prepare` validates a parsed file row by row. Pure functions (no database, no event loop, no
clock): the import runs them in a worker thread.
"""
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from app.catalog.schemas import (
    AttributesText, CategoryText, ChannelCodes, DescriptionText, GtinText, Handle, OptionsText, QuantityText, Sku, Status,
    TaxClass, TitleText,
)
from app.catalog.service import sku_key
from app.core.errors import field_path
from app.core.schemas import MAX_AMOUNT, Code, LaxNonNegInt

MAX_STOCK = 1_000_000_000  # as PUT /v1/inventory/levels


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the request says about every row (query parameters)."""

    price_list: str | None = None
    location: str | None = None

    def as_dict(self) -> dict:
        return {"price_list": self.price_list, "location": self.location}


# --------------------------------------------------------------------------- one row

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


_PRICE_RE = re.compile(r"^[0-9]{1,13}(?:\.[0-9]{1,6})?$")


def _price_text(value: Any) -> Any:
    """A decimal amount in major units, kept as text ("19.99"); JSON numbers by their shortest
    decimal spelling (never through binary floating point arithmetic)."""
    if isinstance(value, bool):
        raise ValueError("A decimal amount like 19.99.")
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        raise ValueError("A decimal amount like 19.99.")
    value = value.strip()
    if not _PRICE_RE.match(value):
        raise ValueError("A decimal amount like 19.99 (digits, a dot before the cents, no currency sign).")
    return value


PriceText = Annotated[str, BeforeValidator(_price_text)]
StockCount = Annotated[int, Field(ge=0, le=MAX_STOCK)]  # lax: the CSV import reads "12"


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
    gtin: GtinText | None = None
    options: OptionsText | None = None
    attributes: AttributesText | None = None
    weight_grams: LaxNonNegInt | None = None
    track_inventory: bool | None = None
    components: Annotated[list[ImportComponent], BeforeValidator(_parse_components), Field(min_length=1, max_length=50)] | None = None
    price: PriceText | None = None
    price_list: Code | None = None
    stock: StockCount | None = None
    location: Code | None = None


FIELDS = frozenset(ImportRow.model_fields)
CSV_COLUMNS = FIELDS - {"options", "attributes", "product_attributes"}
CSV_PREFIXES = {"option.": "options", "attr.": "attributes", "product_attr.": "product_attributes"}
NULLABLE = {"description", "category", "gtin", "weight_grams"}


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


# (line, sku?, raw fields?, error?): error is a message about the row, or (field, message)
Parsed = tuple[int, str | None, dict | None, str | tuple[str, str] | None]


@dataclass(slots=True)
class ParsedFile:
    format: str  # ndjson | csv | shopify
    rows: list[Parsed]
    unknown_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # error field names as the file spells them (Shopify: "Variant Barcode" for gtin)
    aliases: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- validation

def prepare(parsed: ParsedFile) -> list[Row]:
    """Validate every row on its own (pydantic), then refuse SKUs given twice in the file
    (in any case: `ts-m` and `TS-M` are one SKU)."""
    rows = []
    validate = ImportRow.model_validate
    for line, sku, raw, error in parsed.rows:
        row = Row(line=line, sku=sku[:100] if isinstance(sku, str) else None)
        rows.append(row)
        if error:
            row.fail(*error) if isinstance(error, tuple) else row.fail("row", error)
            continue
        try:
            data = validate(raw)
        except ValidationError as exc:
            for e in exc.errors():
                msg = "Unknown field." if e["type"] == "extra_forbidden" else "Field required." if e["type"] == "missing" else e["msg"]
                if msg.startswith("Value error, "):
                    msg = msg[len("Value error, "):]
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
    first_line: dict[str, int] = {}
    for r in rows:
        if r.data is None:
            continue
        key = sku_key(r.sku)
        if key in first_line:
            r.fail("sku", f"SKU {r.sku!r} appears more than once in this import (first at row {first_line[key]}).")
        else:
            first_line[key] = r.line
    return rows


# --------------------------------------------------------------------------- money

# ISO 4217 currencies whose minor unit is not the cent (everything else: 2 decimals).
_DECIMALS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4, "UYW": 4,
}


def minor_units(price: str, currency: str) -> int | str:
    """'19.99' in EUR -> 1999; a message when the amount has more decimals than the currency or
    is above the largest amount."""
    decimals = _DECIMALS.get(currency, 2)
    scaled = Decimal(price).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        return f"{currency} has {decimals} decimal(s); {price!r} has more."
    amount = int(scaled)
    if amount > MAX_AMOUNT:
        return f"At most {MAX_AMOUNT} minor units."
    return amount
