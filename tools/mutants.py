"""The mutants of one module for tools/mutate.py: every single-point change a person could plausibly
make by mistake (a comparison flipped or loosened, `and` for `or`, a `not` dropped, a number off by
one, True for False, a return value replaced by None).

Some changes are never made, because they cannot be told apart by any test or never reach one:

- docstrings, type annotations and the arguments of decorators (`@dataclass(frozen=True)`);
- anything inside a logging call (`log.info(...)`): what is logged is not behaviour;
- `return x -> return None` in a function whose return annotation does not admit None: mypy
  (`make lint`) rejects that mutant before any test runs (a "stillborn" mutant).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

SWAPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
}
LOGGERS = frozenset({"log", "logger", "logging"})
NONE_ADMITTING = ("None", "Optional", "Any", "object")


@dataclass(frozen=True)
class Mutant:
    line: int
    end_line: int
    description: str
    source: str


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes no mutant may touch (see the module docstring)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                roots.append(first.value)
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            roots.extend(node.decorator_list)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            roots.append(node.returns)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in LOGGERS
        ):
            roots.append(node)
    return {id(n) for root in roots for n in ast.walk(root)}


def _admits_none(annotation: ast.expr) -> bool:
    """Whether a return annotation lets a function return None (`X | None`, Optional, Any ...)."""
    if isinstance(annotation, ast.Constant):
        return annotation.value is None or (isinstance(annotation.value, str) and "None" in annotation.value)
    if isinstance(annotation, ast.Name):
        return annotation.id in NONE_ADMITTING
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _admits_none(annotation.left) or _admits_none(annotation.right)
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        if annotation.value.id == "Optional":
            return True
        if annotation.value.id == "Union":
            inner = annotation.slice
            return any(_admits_none(e) for e in (inner.elts if isinstance(inner, ast.Tuple) else [inner]))
    return False


def _stillborn_returns(tree: ast.AST) -> set[int]:
    """Ids of `return x` statements whose function is annotated with a type that excludes None."""
    out: set[int] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or func.returns is None:
            continue
        if _admits_none(func.returns):
            continue
        stack: list[ast.AST] = list(func.body)
        while stack:  # this function's own returns, not those of functions nested in it
            node = stack.pop()
            if isinstance(node, ast.Return):
                out.add(id(node))
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                stack.extend(ast.iter_child_nodes(node))
    return out


def mutants(source: str) -> Iterator[Mutant]:
    """Every single-point mutant of `source` (each made on a fresh parse, so they never stack)."""
    probe = ast.parse(source)
    skip = _skipped_nodes(probe) | _stillborn_returns(probe)
    nodes = list(ast.walk(probe))
    candidates = [i for i, node in enumerate(nodes) if id(node) not in skip and _mutate(node) is not None]
    for index in candidates:
        tree = ast.parse(source)
        node = list(ast.walk(tree))[index]
        change = _mutate(node)
        assert change is not None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            _replace(tree, node, node.operand)  # `not x` -> `x`
        line = getattr(node, "lineno", 0)
        where = f" (column {getattr(node, 'col_offset', 0) + 1})"  # two mutants of one line differ here
        try:
            yield Mutant(line, getattr(node, "end_lineno", None) or line, change + where, ast.unparse(tree))
        except Exception:  # noqa: BLE001 - an unparseable mutant is no mutant
            continue


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put `new` where `old` is in `tree`."""
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return


def _mutate(node: ast.AST) -> str | None:
    """Change `node` in place; say what was changed (None: nothing to change here)."""
    if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
        old = type(node.ops[0])
        node.ops[0] = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.BoolOp) and type(node.op) in SWAPS:
        old = type(node.op)
        node.op = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.BinOp) and type(node.op) in (ast.Add, ast.Sub):
        old = type(node.op)
        node.op = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return "not x -> x"  # the caller replaces the node by its operand
    if isinstance(node, ast.Constant):
        if node.value is True or node.value is False:
            node.value = not node.value
            return f"{not node.value} -> {node.value}"
        if type(node.value) in (int, float):
            node.value = node.value + 1
            return f"{node.value - 1} -> {node.value}"
    if (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        node.value = ast.Constant(None)
        return "return x -> return None"
    return None
