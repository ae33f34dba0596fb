"""Catalog request and response shapes.

Every string is bounded and checked for NUL / invalid Unicode (PostgreSQL refuses
them), every number is bounded, unknown fields are rejected (422 naming the field).
"""
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, Strict, StringConstraints

from app.catalog.codes import gtin_problem, text_problem
from app.core.schemas import Bool, Code, Input, NonNegInt, Output, Version

ProductType = Literal["standard", "bundle"]
Status = Literal["draft", "active", "archived"]
TaxClass = Literal["standard", "reduced", "zero"]

MAX_VARIANTS = 500
MAX_COMPONENTS = 50
MAX_CHANNELS = 100


def _safe(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _gtin(value: str) -> str:
    problem = gtin_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _safe_json(value: Any) -> Any:
    """Keys and string values of attribute maps must be storable in JSON/JSONB."""
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, dict):
        for k, v in value.items():
            _safe(k)
            _safe_json(v)
    elif isinstance(value, list):
        for v in value:
            _safe_json(v)
    return value


def _int_bounds(value: Any) -> Any:
    """JSON integers beyond ±2^53 would silently turn into floats: refuse them (attribute maps are
    flat: scalars and lists of scalars; deeper shapes fail their own validation)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if type(v) is int:
                if not -(2**53) <= v <= 2**53:
                    raise ValueError(f"{k}: integer out of range (at most ±2^53).")
            elif type(v) is list:
                for x in v:
                    if type(x) is int and not -(2**53) <= x <= 2**53:
                        raise ValueError(f"{k}: integer out of range (at most ±2^53).")
    return value


def _unique(values: list[str]) -> list[str]:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"Duplicate value {dupes[0]!r}.")
    return values


# Constraint-only types ("…Text") are what the bulk importer validates with: its parser has
# already refused NUL characters and invalid Unicode for the whole file, so the per-string
# Python checks of the API types (AfterValidator(_safe)) are not repeated 50,000 times.
TitleText = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Title = Annotated[TitleText, AfterValidator(_safe)]
DescriptionText = Annotated[str, StringConstraints(max_length=20_000)]
Description = Annotated[DescriptionText, AfterValidator(_safe)]
Handle = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
# "grocery/wine", "fashion/t-shirts": segments of letters, digits, space . & ' - _ separated by "/".
CategoryText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\w[\w .&'\-]*(?:/\w[\w .&'\-]*)*$")]
Category = Annotated[CategoryText, AfterValidator(_safe)]
# The import checks a GTIN with the row (a per-row error); the API checks it after the body's shape,
# answering `422 invalid_gtin` naming the field (app/catalog/checks.py `check_gtins`).
GtinText = Annotated[str, StringConstraints(min_length=1, max_length=14), AfterValidator(_gtin)]
Gtin = Annotated[str, StringConstraints(min_length=1, max_length=100), Field(
    description="GTIN-8/12/13/14 (EAN/UPC barcode) with its check digit; unique in every spelling. Anything else: "
                "422 invalid_gtin naming the field")]
Sku = Code
OptionKey = Annotated[str, StringConstraints(min_length=1, max_length=50)]
OptionValue = Annotated[str, StringConstraints(min_length=1, max_length=100), Field(coerce_numbers_to_str=True)]
OptionsText = Annotated[dict[OptionKey, OptionValue], Field(max_length=20, description="e.g. {\"size\": \"M\", \"colour\": \"black\"}")]
Options = Annotated[OptionsText, AfterValidator(_safe_json)]
AttrKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttrScalar = (
    Annotated[str, StringConstraints(max_length=2000)]
    | bool
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[float, Field(allow_inf_nan=False, ge=-(2**53), le=2**53)]
    | None
)
AttrValue = AttrScalar | Annotated[list[Annotated[str, StringConstraints(max_length=200)] | Annotated[int, Field(ge=-(2**53), le=2**53)]],
                                   Field(max_length=50)]
AttributesText = Annotated[dict[AttrKey, AttrValue], Field(max_length=50), BeforeValidator(_int_bounds),
                           Field(description="Free-form facts: strings, numbers, booleans, lists of strings")]
Attributes = Annotated[AttributesText, AfterValidator(_safe_json)]
QuantityText = Annotated[int, Field(ge=1, le=1000)]  # lax: the CSV import reads "2"
Quantity = Annotated[QuantityText, Strict()]
ChannelCodes = Annotated[list[Code], Field(max_length=MAX_CHANNELS), AfterValidator(_unique)]


class ComponentIn(Input):
    sku: Sku
    quantity: Quantity = 1


class VariantIn(Input):
    sku: Sku
    gtin: Gtin | None = None
    title: Title | None = Field(default=None, description="Default: the option values ('M / black') or the product title")
    options: Options = {}
    attributes: Attributes = {}
    weight_grams: NonNegInt | None = None
    track_inventory: Bool = True
    components: Annotated[list[ComponentIn], Field(max_length=MAX_COMPONENTS)] | None = Field(
        default=None, description="Bundle products only: what one unit of the bundle consumes")


class VariantCreate(VariantIn):
    """`POST /v1/products/{id}/variants`: a new variant of a standard product."""

    version: Version | None = Field(default=None, description="The product version you expect (like If-Match)")


class ProductCreate(Input):
    handle: Handle | None = Field(default=None, description="URL key; derived from the title when omitted")
    type: ProductType = "standard"
    title: Title
    description: Description | None = None
    status: Status = "draft"
    category: Category | None = None
    attributes: Attributes = {}
    tax_class: TaxClass = "standard"
    channels: ChannelCodes = []
    variants: Annotated[list[VariantIn], Field(min_length=1, max_length=MAX_VARIANTS)]


class ProductUpdate(Input):
    handle: Handle | None = None
    title: Title | None = None
    description: Description | None = None
    status: Status | None = None
    category: Category | None = None
    attributes: Attributes | None = None
    tax_class: TaxClass | None = None
    channels: ChannelCodes | None = None
    version: Version | None = None


class VariantUpdate(Input):
    """The sku is fixed once created (stock, prices and orders refer to it)."""

    gtin: Gtin | None = None
    title: Title | None = None
    options: Options | None = None
    attributes: Attributes | None = None
    weight_grams: NonNegInt | None = None
    track_inventory: Bool | None = None
    components: Annotated[list[ComponentIn], Field(min_length=1, max_length=MAX_COMPONENTS)] | None = None
    version: Version | None = Field(default=None, description="The product version you expect (like If-Match)")


# ---- responses (OpenAPI documentation; routers return plain dicts) ----

class ComponentOut(Output):
    sku: str
    quantity: int


class MoneyOut(BaseModel):
    amount: int = Field(description="Minor units (1999 = 19.99)")
    currency: str


class VariantOut(Output):
    id: str
    sku: str
    gtin: str | None
    title: str
    options: dict[str, str]
    attributes: dict[str, Any]
    weight_grams: int | None
    track_inventory: bool
    components: list[ComponentOut] | None = None
    price: MoneyOut | None = Field(default=None, description=(
        "Priced answers only (a channel-bound key, or admin with `channel`): what one unit costs in the channel "
        "and customer group, the same as a one-unit quote without coupons (tax included in a gross channel, net "
        "in a net one); null when it has no price or is not sold there. Absent without a channel."))
    compare_at_price: MoneyOut | None = Field(default=None, description=(
        "Priced answers only: the price before the promotions, when one applies to a basket of this one unit "
        "(the quote's unit_price); else null."))


class VariantDetailOut(VariantOut):
    object: Literal["variant"] = "variant"
    product_id: str
    product_title: str
    handle: str
    status: Status
    tax_class: TaxClass
    category: str | None
    type: ProductType
    version: int
    created_at: datetime
    updated_at: datetime


class ProductOut(Output):
    id: str
    object: Literal["product"] = "product"
    handle: str
    type: ProductType
    title: str
    description: str | None
    status: Status
    category: str | None
    attributes: dict[str, Any]
    tax_class: TaxClass
    channels: list[str]
    variants: list[VariantOut]
    version: int
    created_at: datetime
    updated_at: datetime


class ProductArchivedOut(ProductOut):
    """DELETE of a product other records refer to: archived instead."""

    deleted: Literal[False] = False
    referenced_by: dict[str, list[str]] = Field(description=(
        "What still refers to its SKUs: {\"orders\" | \"carts\" | \"stock\" | \"prices\" | \"promotions\" | "
        "\"bundles\": [sku…]}"))


class ProductList(BaseModel):
    data: list[ProductOut]
    next_cursor: str | None


class CategoryOut(BaseModel):
    category: str
    products: int


class CategoryList(BaseModel):
    data: list[CategoryOut]
