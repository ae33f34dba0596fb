"""Small pure helpers for catalog codes: GTIN check digits, handles (slugs), text safety."""
import re
import unicodedata

GTIN_LENGTHS = (8, 12, 13, 14)
_HANDLE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
HANDLE_MAX = 200


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for the digits before the check digit (weights 3,1,3,… from the right)."""
    digits = body.encode()
    total = 3 * sum(digits[-1::-2]) + sum(digits[-2::-2]) - 48 * 3 * len(digits[-1::-2]) - 48 * len(digits[-2::-2])
    return (10 - total % 10) % 10


def gtin_problem(value: str) -> str | None:
    """Why `value` is not a GTIN-8/12/13/14, or None when it is one."""
    if not value.isascii() or not value.isdigit():
        return "A GTIN has only digits."
    if len(value) not in GTIN_LENGTHS:
        return "A GTIN has 8, 12, 13 or 14 digits."
    if gtin_check_digit(value[:-1]) != int(value[-1]):
        return f"Invalid GTIN check digit (expected {gtin_check_digit(value[:-1])})."
    return None


def make_gtin(body: str) -> str:
    """`body` (7, 11, 12 or 13 digits) plus its check digit (used by seeds, tests and the bench)."""
    return body + str(gtin_check_digit(body))


def gtin_forms(value: str) -> list[str]:
    """The same trade item written as GTIN-8/12/13/14 (leading zeros differ): a scanner may
    read an EAN-13 `0…` where the catalog holds the UPC-A, or a GTIN-14 with a leading zero."""
    core = value.lstrip("0")
    forms = [value]
    for n in GTIN_LENGTHS:
        if len(core) <= n:
            form = core.rjust(n, "0")
            if form != value:
                forms.append(form)
    return forms


def slugify(text: str, max_length: int = 100) -> str:
    """'Bio-T-Shirt „Größe“ M' -> 'bio-t-shirt-groesse-m'."""
    text = unicodedata.normalize("NFKD", text.translate(_GERMAN)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or "product"


def is_handle(value: str) -> bool:
    return len(value) <= HANDLE_MAX and bool(_HANDLE_RE.match(value))


def text_problem(value: str) -> str | None:
    """Strings must be storable everywhere: no NUL (PostgreSQL text/JSONB refuse it), valid UTF-8."""
    if "\x00" in value:
        return "NUL characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Invalid Unicode (lone surrogate)."
    return None


def checked_text(name: str, value: str | None) -> str | None:
    """A query or path value as given, or 422 validation_error naming `name` (see text_problem)."""
    from app.core.errors import ApiError

    if value is not None:
        problem = text_problem(value)
        if problem:
            raise ApiError(422, "validation_error", f"{name}: {problem}", errors=[{"field": name, "message": problem}])
    return value


def like_pattern(value: str) -> str:
    """A LIKE pattern matching `value` as a literal substring (escape character: backslash)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"
