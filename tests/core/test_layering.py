"""Dependencies run one way, read from the source with `ast` (no app module is imported).

    core ← locations ← auth, channels ← catalog ← inventory, pricing ← orders ← payments, returns
    imports (a retailer's file: products + prices + stock, jobs) sits above catalog, pricing, inventory

Every import statement counts, at module level or inside a function. Modules loaded by name
through importlib are registries wired on purpose and not seen here: the routers in
app/main.py, the tables in app/models_registry.py, the jobs in app/worker.py, the seeders in
app/seed.py, the reference finders in app/core/references.py (HOLDERS, loaded on first use
because the holders sit above core).
"""
import ast
from pathlib import Path
from typing import NamedTuple

APP = Path(__file__).resolve().parents[2] / "app"
PACKAGES = {p.name for p in APP.iterdir() if (p / "__init__.py").is_file()}
TOP_MODULES = {p.stem for p in APP.glob("*.py") if p.stem != "__init__"}  # main, worker, cli, seed, …


class Import(NamedTuple):
    file: str  # "app/catalog/router.py"
    line: int
    module: str  # what it names: "app.pricing.shelf" for `from app.pricing import shelf`
    lazy: bool  # inside a function

    @property
    def package(self) -> str:
        return self.module.split(".")[1] if self.module.count(".") else ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}{' (in a function)' if self.lazy else ''}"


class _Collector(ast.NodeVisitor):
    def __init__(self, file: str, package: list[str]) -> None:
        self.file, self.package, self.depth, self.found = file, package, 0, []

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _add(self, node: ast.AST, module: str) -> None:
        if module == "app" or module.startswith("app."):
            self.found.append(Import(self.file, node.lineno, module, self.depth > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the file's package
            parent = self.package[:len(self.package) - node.level + 1]
            base = ".".join(parent + ([base] if base else []))
        for alias in node.names:
            self._add(node, f"{base}.{alias.name}" if alias.name != "*" else base)


def app_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent)
        collector = _Collector(rel.as_posix(), list(rel.with_suffix("").parts[:-1]))
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(rel)))
        found += collector.found
    return found


def names(imp: Import, module: str) -> bool:
    return imp.module == module or imp.module.startswith(module + ".")


IMPORTS = app_imports()

# (checked package, the packages and top modules it must not import)
RULES = {
    # the catalog is below inventory, pricing and everything built on them (the bulk import's
    # price and stock columns and its jobs live in app/imports for that reason)
    "catalog": {"inventory", "pricing", "orders", "imports", "payments", "returns", "customers", "reports"},
    # core is below every domain and below the composition modules (main, worker, cli, seed …)
    "core": (PACKAGES - {"core"}) | TOP_MODULES,
    # inventory and pricing are below orders and what builds on orders
    "inventory": {"orders", "payments", "returns", "reports", "imports"},
    "pricing": {"orders", "payments", "returns", "reports", "imports"},
}

# The deliberate exceptions: (file, module it names, must stay inside a function). Each names its
# reason; a new one needs one too.
ALLOWED = {
    # A router composing domains: product and variant pages carry each variant's price in the
    # key's channel. Pricing builds on the catalog; the catalog's services never see a price.
    ("app/catalog/router.py", "app.pricing.shelf", False),
    # The OpenAPI post-processing (run once, on the built app) asks auth which paths need no key
    # (PUBLIC_PREFIXES) and the role names (ROLES) to document 401/403: read inside the functions,
    # so importing app.core never loads auth.
    ("app/core/openapi.py", "app.auth.middleware", True),
    ("app/core/openapi.py", "app.auth.principal", True),
}


def _allowed(imp: Import) -> bool:
    return any(imp.file == file and names(imp, module) and (imp.lazy or not lazy_only)
               for file, module, lazy_only in ALLOWED)


def test_the_scan_sees_the_code():
    files = {i.file for i in IMPORTS}
    assert {"app/catalog/importer.py", "app/imports/jobs.py", "app/core/openapi.py"} <= files
    assert {"catalog", "core", "imports", "inventory", "pricing", "orders"} <= PACKAGES


def test_dependencies_run_one_way():
    wrong = [f"{imp}: {package} must not import app.{imp.package}"
             for package, forbidden in RULES.items()
             for imp in IMPORTS
             if imp.file.startswith(f"app/{package}/") and imp.package in forbidden and not _allowed(imp)]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_import_use_case():
    """app.imports is a top: main, the models registry and the worker load it by name."""
    wrong = [str(imp) for imp in IMPORTS if imp.package == "imports" and not imp.file.startswith("app/imports/")]
    assert not wrong, "\n".join(wrong)


def test_every_allowed_exception_is_still_there():
    """A stale entry would quietly allow a new import: remove it when its import goes."""
    stale = [entry for entry in ALLOWED
             if not any(imp.file == entry[0] and names(imp, entry[1]) for imp in IMPORTS)]
    assert not stale, stale
