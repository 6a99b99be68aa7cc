"""The identity of the code a training run executes: a hash of what the code computes, not of how it is written.

The modules in the identity are the import closure of the training entry point (every package module it imports,
directly or through others, at any depth, and the ``__init__`` of every package on the way), less ``EXCLUDED``:
modules that cannot change a run's numbers. Each module is parsed, and its syntax tree is written out by
``dump`` below (not ``ast.dump``, whose text differs between Python versions) without docstrings, comments,
positions or formatting. Imports of the package's own names are rewritten to where the name is defined:
``from lit_infoprompt.model.losses import head_loss`` becomes a binding of ``head_loss`` to the symbol
``head_loss`` of the module whose body defines it, and that module is named by a hash of its body, never by its
path. So a comment, a docstring, the order of the package's own imports, a re-export or a moved or renamed file
keep the identity; any changed statement changes it. Modules are hashed as a sorted multiset, so their names
never enter the hash.

A false "changed" is safe (a comparison refuses to mix the runs); a false "same" is not: whatever is unsure is
kept in the text (annotations, the names of external imports, ``__file__`` expressions).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

PACKAGE = "lit_infoprompt"
SCHEME = "ast-v1"  # bump when dump or the normalisation changes: every identity changes with it
# Modules that cannot change a run's numbers, by their last name (so a move keeps the list): the console (a
# progress bar, filters of dependency log lines), provenance and identity (what is recorded about the code and
# the machine), tracking (the optional W&B logger). tests/test_identity.py keeps this list honest.
EXCLUDED = ("console", "provenance", "identity", "tracking")
SKIPPED_FIELDS = {"type_comment", "type_ignores", "kind"}  # comments and the u"" prefix: not computation


class IdentityError(Exception):
    """The closure cannot be computed (a module the code imports is missing, or cannot be parsed)."""


def modules_of(root: Path, package: str = PACKAGE) -> Dict[str, Path]:
    """{dotted module name: file} of the package under ``root`` (the folder that holds the package folder)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def absolute(module: str, is_package: bool, target: Optional[str], level: int) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


@dataclass
class Module:
    name: str
    tree: ast.Module
    is_package: bool
    # local name -> ("module" | "symbol" | "external", what): bindings made by top-level imports
    bindings: Dict[str, Tuple[str, str]] = field(default_factory=dict)


class Closure:
    """The modules a training run imports, and the canonical names of the package's own symbols."""

    def __init__(self, root: Path, entry: str, excluded: Iterable[str] = EXCLUDED, package: str = PACKAGE):
        self.files = modules_of(Path(root), package)
        self.package = package
        self.excluded = set(excluded)
        self.parsed: Dict[str, Module] = {}
        self.shallow_cache: Dict[str, str] = {}
        if entry not in self.files:
            raise IdentityError(f"the training entry point {entry} is not a module under {root}")
        self.names = self.walk(entry)

    # -- reading -------------------------------------------------------------------------------------------
    def excluded_module(self, name: str) -> bool:
        return name.split(".")[-1] in self.excluded

    def internal(self, name: str) -> bool:
        return name == self.package or name.startswith(self.package + ".")

    def module(self, name: str) -> Module:
        if name not in self.parsed:
            path = self.files[name]
            try:
                tree = ast.parse(path.read_text(), filename=str(path))
            except SyntaxError as error:
                raise IdentityError(f"cannot parse {path}: {error}") from None
            mod = Module(name, tree, path.name == "__init__.py")
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for local, binding in self.import_bindings(mod, node):
                        mod.bindings[local] = binding
            self.parsed[name] = mod
        return self.parsed[name]

    def import_bindings(self, mod: Module, node: ast.AST) -> List[Tuple[str, Tuple[str, str]]]:
        """(local name, binding) of one import statement; a binding of an external name is ("external", text)."""
        out = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                if self.internal(alias.name):
                    if alias.asname:
                        out.append((alias.asname, ("module", alias.name)))
                    else:  # `import lit_infoprompt.x` binds the top package; attribute chains keep the path
                        out.append((alias.name.split(".")[0], ("module", self.package)))
                else:
                    out.append((alias.asname or alias.name.split(".")[0], ("external", alias.name)))
            return out
        source = absolute(mod.name, mod.is_package, node.module, node.level)
        for alias in node.names:
            local = alias.asname or alias.name
            if not self.internal(source):
                out.append((local, ("external", f"{source}.{alias.name}")))
            elif f"{source}.{alias.name}" in self.files:
                out.append((local, ("module", f"{source}.{alias.name}")))
            else:
                out.append((local, ("symbol", f"{source}:{alias.name}")))
        return out

    def imported_modules(self, mod: Module) -> Set[str]:
        """Every package module an import anywhere in ``mod`` names (inside functions too), with its parents."""
        found = set()
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for _, (kind, what) in self.import_bindings(mod, node):
                    if kind == "module":
                        found.add(what)
                    elif kind == "symbol":
                        found.add(what.split(":")[0])
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names if self.internal(a.name))
        with_parents = set()
        for name in found:
            parts = name.split(".")
            with_parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return with_parents

    def walk(self, entry: str) -> List[str]:
        """The closure: entry's modules and the parents of each, breadth first, less the excluded modules."""
        parts = entry.split(".")
        todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        seen: Set[str] = set()
        while todo:
            name = todo.pop(0)
            if name in seen or self.excluded_module(name):
                continue
            if name not in self.files:
                raise IdentityError(f"{entry} imports {name}, which is not a module of the package")
            seen.add(name)
            todo += sorted(self.imported_modules(self.module(name)) - seen)
        return sorted(seen)

    # -- canonical names -------------------------------------------------------------------------------------
    def shallow(self, name: str) -> str:
        """A name for a module that its path does not enter: the hash of its body without the package's own
        imports (which is enough to tell modules apart; the full identity covers everything else)."""
        if name not in self.shallow_cache:
            if self.excluded_module(name):
                self.shallow_cache[name] = "excluded:" + name.split(".")[-1]
            else:
                text = Writer(self, self.module(name), resolve=False).module_text()
                self.shallow_cache[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self.shallow_cache[name]

    def resolve(self, module: str, symbol: str, depth: int = 0) -> str:
        """Where ``module``'s ``symbol`` is defined, as "<symbol>@<module's shallow hash>" (or the external name
        a package module re-exports)."""
        if depth > 50:
            raise IdentityError(f"a cycle of re-exports at {module}.{symbol}")
        if self.excluded_module(module):
            return f"{symbol}@{self.shallow(module)}"
        if module not in self.files:
            raise IdentityError(f"{module} is not a module of the package")
        kind, what = self.module(module).bindings.get(symbol, ("defined", ""))
        if kind == "symbol":
            source, name = what.split(":")
            return self.resolve(source, name, depth + 1)
        if kind == "module":
            return self.module_ref(what)
        if kind == "external":
            return "external:" + what
        return f"{symbol}@{self.shallow(module)}"

    def module_ref(self, name: str) -> str:
        return "module@" + self.shallow(name)

    def binding_ref(self, binding: Tuple[str, str]) -> str:
        kind, what = binding
        if kind == "module":
            return self.module_ref(what)
        if kind == "symbol":
            source, name = what.split(":")
            return self.resolve(source, name)
        return "external:" + what

    # -- the identity -------------------------------------------------------------------------------------------
    def texts(self) -> List[str]:
        """The canonical text of each module of the closure (empty modules, e.g. an ``__init__`` holding only a
        docstring, are left out: adding a package folder changes nothing a run computes)."""
        out = []
        for name in self.names:
            text = Writer(self, self.module(name), resolve=True).module_text()
            if text:
                out.append(text)
        return sorted(out)

    def identity(self) -> str:
        digest = hashlib.sha256(SCHEME.encode() + b"\0")
        for text in self.texts():
            digest.update(hashlib.sha256(text.encode()).digest())
        return digest.hexdigest()[:16]


class Writer:
    """The stable text of a syntax tree: node class names, fields sorted by name, empty fields left out, constants
    by type and repr; docstrings (any statement that is a lone constant) dropped; the package's own imports
    replaced by their canonical bindings (``resolve``) or dropped (the shallow hash)."""

    def __init__(self, closure: Closure, mod: Module, resolve: bool):
        self.closure, self.mod, self.resolve = closure, mod, resolve

    def module_text(self) -> str:
        body, internal = [], []
        for node in self.mod.tree.body:
            if is_docstring(node):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)) and self.internal_import(node):
                internal += self.canonical_bindings(node)
                continue
            body.append(self.dump(node))
        # the package's own top-level imports as a set of the names the module uses: their order and grouping
        # change nothing, and a name only re-exported (a package's __init__) is resolved where it is imported
        used = {n.id for stmt in self.mod.tree.body if not isinstance(stmt, (ast.Import, ast.ImportFrom))
                for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        head = [f"(InternalImport {b})" for b in sorted(set(internal)) if b.split("=")[0] in used]
        if not self.resolve:
            head = []
        return "\n".join(head + body)

    def internal_import(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Import):
            return any(self.closure.internal(a.name) for a in node.names)
        source = absolute(self.mod.name, self.mod.is_package, node.module, node.level)
        return self.closure.internal(source)

    def canonical_bindings(self, node: ast.AST) -> List[str]:
        return [f"{local}={self.closure.binding_ref(binding)}"
                for local, binding in self.closure.import_bindings(self.mod, node)]

    def dump(self, node) -> str:
        if isinstance(node, ast.AST):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and self.internal_import(node):
                if not self.resolve:
                    return "(InternalImport)"
                return "(InternalImport " + " ".join(sorted(self.canonical_bindings(node))) + ")"
            parts = []
            for name in sorted(node._fields):
                if name in SKIPPED_FIELDS:
                    continue
                value = getattr(node, name, None)
                if value is None or (isinstance(value, list) and not value):
                    continue
                if name == "body" and isinstance(value, list):
                    value = [s for s in value if not is_docstring(s)]
                parts.append(f"{name}={self.dump(value)}")
            return f"({type(node).__name__}" + "".join(" " + p for p in parts) + ")"
        if isinstance(node, list):
            return "[" + ",".join(self.dump(v) for v in node) + "]"
        return f"{type(node).__name__}:{node!r}"


def code_identity(root: Path, entry: str, excluded: Iterable[str] = EXCLUDED) -> str:
    """The identity of the training code under ``root`` (the folder that holds ``lit_infoprompt/``)."""
    return Closure(root, entry, excluded).identity()
