"""The problem `code`s an operation can answer, found by reading its handler's code.

`ErrorCodes` reads a function's source and, recursively, the source of the app's functions it
calls, collecting every `ApiError(<status>, "<code>")` (or `problem_response`, or a subclass of
ApiError) whose status and code are literals, or parameters a caller gives literally
(`conflict("duplicate_sku", …)`, `validation_error(…, code="unknown_sku")`, defaults included).
It also tells whether the handler reads If-Match (reaches `app.core.concurrency`'s
`if_match_version` or `check_version`). `app.core.openapi` documents both per operation.

Method calls on objects it cannot resolve (`who.channel_or_404(…)`) are not followed, and a
code computed at run time is not seen, so it can miss a code; a shared function's every code
counts, so it can name one that this operation's branch never reaches. It never names a code
that is not written in the code.
"""
import ast
import builtins
import inspect
from pathlib import Path
from typing import Any

from app.core.errors import DEFAULT_CODES, ApiError, problem_response

# Functions whose call means the operation reads If-Match.
_IF_MATCH_READERS = {("app.core.concurrency", "if_match_version"), ("app.core.concurrency", "check_version")}
_MAX_DEPTH = 12


class ErrorCodes:
    """Reads functions (see the module's docstring); one instance shares its parses and results."""

    def __init__(self) -> None:
        self._memo: dict[tuple, tuple[frozenset, frozenset]] = {}
        self._calls: dict[Any, list[ast.Call]] = {}
        self._modules: dict[str, dict[int, ast.AST]] = {}

    def of(self, fn: Any) -> tuple[set[tuple[int, str]], set[tuple[str, str]]]:
        """(status, code) pairs, and the (module, name) of every app function reached."""
        codes, reached = self._visit(inspect.unwrap(fn), (), 0, set())
        return set(codes), set(reached)

    def _function_calls(self, fn: Any) -> list[ast.Call]:
        """The calls in a function's body (nested functions included). Each source file is parsed
        once; a function is found by its first line (its first decorator's, as the code object has it)."""
        if fn not in self._calls:
            code = getattr(fn, "__code__", None)
            node = None
            if code is not None and code.co_name != "<lambda>":
                if code.co_filename not in self._modules:
                    by_line: dict[int, ast.AST] = {}
                    try:
                        tree = ast.parse(Path(code.co_filename).read_text(encoding="utf-8"))
                    except (OSError, SyntaxError, ValueError):
                        tree = None
                    for n in _function_defs(tree.body if tree is not None else []):
                        by_line[min([n.lineno] + [d.lineno for d in n.decorator_list])] = n
                    self._modules[code.co_filename] = by_line
                node = self._modules[code.co_filename].get(code.co_firstlineno)
            self._calls[fn] = [n for n in ast.walk(node) if isinstance(n, ast.Call)] if node is not None else []
        return self._calls[fn]

    def _visit(self, fn: Any, bindings: tuple, depth: int, active: set) -> tuple[frozenset, frozenset]:
        key = (fn, bindings)
        if key in self._memo:
            return self._memo[key]
        if key in active or depth > _MAX_DEPTH:
            return frozenset(), frozenset()
        active.add(key)
        codes: set[tuple[int, str]] = set()
        reached: set[tuple[str, str]] = {(getattr(fn, "__module__", ""), getattr(fn, "__name__", ""))}
        calls = self._function_calls(fn)
        if calls:
            names = dict(bindings)
            scope = dict(getattr(fn, "__globals__", {}))
            code = getattr(fn, "__code__", None)
            if code is not None and fn.__closure__:
                for name, cell in zip(code.co_freevars, fn.__closure__):
                    try:
                        scope[name] = cell.cell_contents
                    except ValueError:  # an empty cell
                        pass
            for node in calls:
                if self._is_super_init(node, fn, scope):
                    self._add(codes, node, names, ApiError)
                    continue
                callee = _resolve(node.func, scope)
                if callee is None:
                    continue
                if callee is ApiError or callee is problem_response:
                    self._add(codes, node, names, callee)
                    continue
                target = callee
                if inspect.isclass(callee):
                    if not issubclass(callee, ApiError) or "__init__" not in vars(callee):
                        continue
                    target = vars(callee)["__init__"]
                target = inspect.unwrap(getattr(target, "__func__", target))
                if not inspect.isfunction(target) or not _is_app(target):
                    continue
                args = _bind(callee if not inspect.isclass(callee) else target, node, names,
                             skip_first=inspect.isclass(callee))
                sub_codes, sub_reached = self._visit(target, args, depth + 1, active)
                codes |= sub_codes
                reached |= sub_reached
        active.discard(key)
        result = frozenset(codes), frozenset(reached)
        self._memo[key] = result
        return result

    @staticmethod
    def _is_super_init(node: ast.Call, fn: Any, scope: dict) -> bool:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super"):
            return False
        owner = scope.get(getattr(fn, "__qualname__", "").split(".")[0])
        return inspect.isclass(owner) and issubclass(owner, ApiError)

    @staticmethod
    def _add(codes: set, node: ast.Call, names: dict, callee: Any) -> None:
        """ApiError(status, code=None, …) and problem_response(status, code, …)."""
        given = {kw.arg: kw.value for kw in node.keywords if kw.arg}
        for i, name in enumerate(("status", "code")):
            if i < len(node.args) and not isinstance(node.args[i], ast.Starred):
                given.setdefault(name, node.args[i])
        status = _literal(given.get("status"), names)
        code = _literal(given["code"], names) if "code" in given else DEFAULT_CODES.get(status) if callee is ApiError else None
        if isinstance(status, int) and isinstance(code, str) and 400 <= status < 600:
            codes.add((status, code))


def _function_defs(statements: list[ast.stmt]):
    """Every function defined in these statements, nested ones too (expressions are not entered)."""
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _function_defs([n for n in inner if isinstance(n, ast.AST)])


def _is_app(fn: Any) -> bool:
    module = getattr(fn, "__module__", "") or ""
    return module == "app" or module.startswith("app.")


def _resolve(node: ast.AST, scope: dict) -> Any:
    """The object an expression like `name` or `module.attr` / `Class.attr` names, else None."""
    if isinstance(node, ast.Name):
        return scope[node.id] if node.id in scope else getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        if inspect.ismodule(base):
            return getattr(base, node.attr, None)
        if inspect.isclass(base):  # never an instance: no property runs
            found = inspect.getattr_static(base, node.attr, None)
            if isinstance(found, staticmethod):
                return found.__func__
            return getattr(base, node.attr, None) if isinstance(found, classmethod) else found
    return None


def _literal(node: ast.AST | None, names: dict) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def _bind(callee: Any, node: ast.Call, names: dict, skip_first: bool = False) -> tuple:
    """The callee's parameters that get a literal (str/int) here, its literal defaults included."""
    try:
        params = list(inspect.signature(callee).parameters.values())
    except (TypeError, ValueError):
        return ()
    if skip_first:
        params = params[1:]
    out: dict[str, Any] = {}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for param, arg in zip(positional, node.args):
        if isinstance(arg, ast.Starred):
            break
        out[param.name] = _literal(arg, names)
    for kw in node.keywords:
        if kw.arg:
            out[kw.arg] = _literal(kw.value, names)
    for param in params:
        if param.name not in out and isinstance(param.default, (str, int)) and not isinstance(param.default, bool):
            out[param.name] = param.default
    return tuple(sorted((k, v) for k, v in out.items() if isinstance(v, (str, int)) and not isinstance(v, bool)))


def _handler_calls(route: Any) -> list[Any]:
    """The route's endpoint and its dependencies, minus the role checks (documented generically)."""
    calls = [route.dependant.call] if getattr(route.dependant, "call", None) else []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        stack.extend(dep.dependencies)
        if dep.call is not None and not getattr(dep.call, "__name__", "").startswith("require_"):
            calls.append(dep.call)
    return calls


def route_errors(route: Any, analyzer: ErrorCodes) -> tuple[set[tuple[int, str]], bool]:
    """The (status, code) pairs a route's handler can raise, and whether it reads If-Match."""
    codes: set[tuple[int, str]] = set()
    reached: set[tuple[str, str]] = set()
    for call in _handler_calls(route):
        c, r = analyzer.of(call)
        codes |= c
        reached |= r
    return codes, bool(reached & _IF_MATCH_READERS)
