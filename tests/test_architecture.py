"""The package's import structure: no cycles, one public face for the engines.

The checks parse every module of ``kcbatch`` with ``ast`` (nothing is
imported), so they see function-level imports too, which a runtime check of
``sys.modules`` would only see on the code paths a test happens to take. Each
checker is also run on small synthetic packages written to ``tmp_path`` to
show that it fails when it should.

Edges of the import graph: ``import a.b`` is an edge to ``a.b``; ``from P
import n`` is an edge to the submodule ``P.n`` when there is one, else to
``P``. Parent packages are not edges: ``kcbatch/__init__`` re-exports the API,
so counting it would put every module on a cycle through it, yet Python has
always finished initialising a parent before running the child's body.
Imports under ``if TYPE_CHECKING:`` never run and are left out of the cycle
graph (the boundary rules still apply to them).
"""
from __future__ import annotations

import ast
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Package name -> source directory, as setup.cfg's package_dir maps them.
PACKAGES = {"kcbatch": ROOT / "kcbatch", "kcbatch.kernels": ROOT / "kernels"}
# Packages that code outside them may import only as a whole (their __init__).
SEALED = ("kcbatch.engines",)
# Imported only inside functions, so that ``import kcbatch`` stays GPU-free and
# Dask-free (the dask extra is optional).
LAZY = ("cupy", "cupyx", "cupy_backends", "dask", "distributed", "dask_cuda")


@dataclass(frozen=True)
class Import:
    importer: str  # module that imports
    target: str  # absolute name of the module imported (see module docstring)
    line: int
    in_function: bool
    type_checking: bool  # under ``if TYPE_CHECKING:``
    names: tuple[str, ...] = ()  # ``from P import a, b``: the names a, b taken from target



def discover(packages: dict[str, Path]) -> dict[str, Path]:
    """Module name -> source file of every ``.py`` under each package directory."""
    out: dict[str, Path] = {}
    for pkg, directory in packages.items():
        for py in sorted(directory.rglob("*.py")):
            parts = py.relative_to(directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((pkg, *parts))] = py
    return out


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _known(name: str, modules: dict[str, Path]) -> str:
    """``name`` if it is one of ``modules``, else its nearest ancestor that is
    (``from .x import y`` where y is a class: the edge goes to x)."""
    probe = name
    while probe and probe not in modules:
        probe = probe.rpartition(".")[0]
    return probe or name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def parse_imports(modules: dict[str, Path]) -> list[Import]:
    """Every import statement of every module, resolved to absolute module names.

    Internal targets (under the top-level names of ``modules``) are resolved to
    the module the statement loads; external ones keep their dotted module path."""
    roots = {m.split(".")[0] for m in modules}
    found: list[Import] = []
    for module, path in modules.items():
        package = _package_of(module, path)
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))

        def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                in_function = True
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.body:
                    visit(child, in_function, True)
                for child in node.orelse:
                    visit(child, in_function, type_checking)
                return
            targets: list[str] = []
            names: dict[str, tuple[str, ...]] = {}
            if isinstance(node, ast.Import):
                targets = [_known(a.name, modules) if a.name.split(".")[0] in roots
                           else a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package  # noqa: B023  (visit runs within this iteration)
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                if base.split(".")[0] in roots or node.level:
                    for a in node.names:
                        sub = f"{base}.{a.name}"
                        if sub in modules:
                            targets.append(sub)
                        else:
                            target = _known(base, modules)
                            targets.append(target)
                            names[target] = names.get(target, ()) + (a.name,)
                else:
                    targets = [base]
            for t in dict.fromkeys(targets):
                found.append(Import(module, t, node.lineno, in_function,  # noqa: B023  (as above)
                                    type_checking,
                                    names.get(t, ())))
            for child in ast.iter_child_nodes(node):
                visit(child, in_function, type_checking)

        visit(tree, False, False)
    return found


@dataclass
class Project:
    """The parsed import structure of a set of packages."""

    modules: dict[str, Path]
    imports: list[Import]
    base: Path  # locations in messages are relative to it

    @classmethod
    def load(cls, packages: dict[str, Path]) -> Project:
        modules = discover(packages)
        base = Path(os.path.commonpath([d.parent for d in packages.values()]))
        return cls(modules, parse_imports(modules), base)

    def where(self, imp: Import) -> str:
        return f"{self.modules[imp.importer].relative_to(self.base).as_posix()}:{imp.line}"

    def graph(self, type_checking: bool = False) -> dict[str, dict[str, Import]]:
        """importer -> {imported module: first import statement}, internal
        modules only, self-imports left out, and TYPE_CHECKING imports unless
        ``type_checking``."""
        g: dict[str, dict[str, Import]] = {m: {} for m in self.modules}
        for imp in self.imports:
            if imp.target in self.modules and imp.target != imp.importer \
                    and (type_checking or not imp.type_checking):
                g[imp.importer].setdefault(imp.target, imp)
        return g

    def cycles(self, type_checking: bool = True) -> list[str]:
        """One line per import cycle found by a depth-first search, e.g.
        ``a -> b (b.py:3) -> a (a.py:7)``; empty when the graph is acyclic.
        Imports under TYPE_CHECKING count unless ``type_checking`` is False: a
        cycle that only type hints close is still two modules that need each other."""
        g = self.graph(type_checking)
        state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished
        stack: list[str] = []
        out: list[str] = []

        def dfs(m: str) -> None:
            state[m] = 1
            stack.append(m)
            for t in sorted(g[m]):
                if state.get(t) == 1:
                    loop = stack[stack.index(t):] + [t]
                    steps = [loop[0]] + [f"{b} ({self.where(g[a][b])})"
                                         for a, b in itertools.pairwise(loop)]
                    out.append(" -> ".join(steps))
                elif t not in state:
                    dfs(t)
            stack.pop()
            state[m] = 2

        for m in sorted(g):
            if m not in state:
                dfs(m)
        return out

    def boundary_violations(self, sealed: tuple[str, ...] = SEALED,
                            lazy: tuple[str, ...] = LAZY) -> list[str]:
        """One line per import that breaks a structural rule:

        * a module outside a sealed package imports one of its submodules;
        * a module imports an underscore-prefixed module of another package;
        * a module imports a ``lazy`` package at module level.
        """
        out = []
        for imp in self.imports:
            where = f"{imp.importer} ({self.where(imp)})"
            for pkg in sealed:
                inside = imp.importer == pkg or imp.importer.startswith(pkg + ".")
                if not inside and imp.target.startswith(pkg + "."):
                    out.append(f"{where} imports {imp.target}; outside {pkg} import "
                               f"only {pkg} itself")
            parent, _, last = imp.target.rpartition(".")
            private = [p for p in imp.target.split(".")[1:]
                       if p.startswith("_") and not p.startswith("__")]
            importer_pkg = _package_of(imp.importer, self.modules[imp.importer])
            if private and not (parent == importer_pkg and private == [last]):
                out.append(f"{where} imports the private module {imp.target} "
                           f"of another package")
            if imp.target.split(".")[0] in lazy and not imp.in_function:
                out.append(f"{where} imports {imp.target} at module level; import it "
                           f"inside the function that needs it")
        return out


    def layer_violations(self, layers: tuple[tuple[str, ...], ...]) -> list[str]:
        """One line per import of a module of a later layer than its importer's.

        ``layers`` lists module-name prefixes, lowest layer first; a module
        belongs to the layer of its longest matching prefix. Every import
        counts: module level, in a function, or under TYPE_CHECKING. A module
        in no layer is reported too, so a new package must be placed."""
        def layer(module: str) -> int | None:
            return layer_of(module, layers)

        out = [f"{m} is in no layer" for m in self.modules if layer(m) is None]
        for imp in self.imports:
            if imp.target not in self.modules:
                continue
            a, b = layer(imp.importer), layer(imp.target)
            if a is not None and b is not None and b > a:
                out.append(f"{imp.importer} ({self.where(imp)}) imports {imp.target}, "
                           f"a later layer ({' '.join(layers[b])} after "
                           f"{' '.join(layers[a])})")
        return out

    def private_names(self) -> list[str]:
        """One line per ``from M import _name`` of another module's private name."""
        return [f"{imp.importer} ({self.where(imp)}) imports the private name {n} "
                f"of {imp.target}"
                for imp in self.imports if imp.target in self.modules
                and imp.target != imp.importer
                for n in imp.names if n.startswith("_") and not n.startswith("__")]


# --------------------------------------------------------------------------- the package

# The layers, lowest first: the path of the data through a study. A module may
# import its own layer and earlier ones, never a later one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kcbatch.version", "kcbatch.kernels"),  # the release and the kernel sources
    ("kcbatch.protocol",),  # what is computed: validated, frozen, no I/O
    ("kcbatch.networks",),  # the network models' generators and users' graph files
    ("kcbatch.theory",),  # each network's mean-field predictions
    ("kcbatch.inputs",),  # a study's networks, frequencies and phases, packed into batches
    ("kcbatch.engines",),  # integrate a batch: r(t) samples
    ("kcbatch.analysis",),  # samples -> Kc, theory, summaries of runs
    ("kcbatch.results",),  # what a study keeps: the store
    ("kcbatch.export",),  # the store -> tables, figures, reports
    ("kcbatch.run",),  # a study, a scan, a cluster, merging: drives all of the above
    ("kcbatch.api",),  # the public Python functions
    ("kcbatch.cli", "kcbatch.__main__"),  # the command line
    ("kcbatch",),  # the package root re-exports the API
)
# The layers' names in docs/design.md, section 3.
LAYER_NAMES = ("base", "protocol", "networks", "theory", "inputs", "engines", "analysis",
               "results", "export", "run", "api", "cli", "root")
DESIGN = ROOT / "docs" / "design.md"


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """Index in ``layers`` of ``module``'s layer: its longest matching prefix."""
    best: tuple[int, int] | None = None
    for i, prefixes in enumerate(layers):
        for pre in prefixes:
            if (module == pre or module.startswith(pre + ".")) and \
                    (best is None or len(pre) > best[1]):
                best = (i, len(pre))
    return None if best is None else best[0]


def documented_layers(text: str) -> list[tuple[str, set[str], set[str]]]:
    """(layer name, the layers it says it imports, the module files it lists), in the
    order of ``### Layers`` in design.md's section 3: headers ``#### NAME (imports:
    A, B)`` (or ``none``), each followed by list items naming files in backticks."""
    section = text.split("### Layers", 1)[1].split("\n### ", 1)[0]
    out: list[tuple[str, set[str], set[str]]] = []
    for line in section.splitlines():
        if line.startswith("#### "):
            name, _, rest = line[5:].partition(" (imports: ")
            deps = {d.strip() for d in rest.rstrip(")").split(",")} - {"none"}
            out.append((name.strip(), deps, set()))
        elif out and line.startswith(("- ", "  ")):
            out[-1][2].update(re.findall(r"`((?:kcbatch|kernels)/[\w/]+\.py)`", line))
    return out

@pytest.fixture(scope="module")
def project() -> Project:
    return Project.load(PACKAGES)


def test_the_parse_sees_the_package(project):
    # Guards against a checker that passes because it found nothing.
    assert {"kcbatch", "kcbatch.engines", "kcbatch.engines.launch", "kcbatch.networks.ba",
            "kcbatch.kernels", "kcbatch.run.study"} <= set(project.modules)
    g = project.graph()
    assert "kcbatch.engines" in g["kcbatch.run.plan"]
    assert "kcbatch.engines.cuda" in g["kcbatch.engines"]  # function-level, `from . import`
    assert "kcbatch.kernels" in g["kcbatch.engines.cxx"]  # function-level, level 2
    assert "kcbatch.engines.launch" in g["kcbatch.engines.kernel_engine"]  # multi-line `from .x import`


def test_no_import_cycle(project):
    cycles = project.cycles()
    assert not cycles, "import cycle(s):\n" + "\n".join(cycles)


def test_engines_public_face_private_modules_and_lazy_cupy(project):
    bad = project.boundary_violations()
    assert not bad, "\n".join(bad)


def test_no_layer_imports_a_later_one(project):
    bad = project.layer_violations(LAYERS)
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_from_another_module(project):
    bad = project.private_names()
    assert not bad, "\n".join(bad)


def test_design_md_lists_every_module_in_its_layer(project):
    doc = documented_layers(DESIGN.read_text("utf-8"))
    assert [name for name, _, _ in doc] == list(LAYER_NAMES)
    listed = {f: name for name, _, files in doc for f in files}
    files = {m: p.relative_to(ROOT).as_posix() for m, p in project.modules.items()}
    # Empty package markers need no line of their own.
    wanted = {f for m, f in files.items() if Path(ROOT / f).read_text("utf-8").strip()}
    missing = sorted(wanted - set(listed))
    assert not missing, f"modules missing from docs/design.md section 3: {missing}"
    stale = sorted(set(listed) - set(files.values()))
    assert not stale, f"docs/design.md section 3 lists files that do not exist: {stale}"
    for module, f in files.items():
        if f in listed:
            assert listed[f] == LAYER_NAMES[layer_of(module)], \
                f"{f} is listed under {listed[f]}, but its layer is " \
                f"{LAYER_NAMES[layer_of(module)]}"


def test_design_md_says_what_each_layer_really_imports(project):
    real: dict[str, set[str]] = {name: set() for name in LAYER_NAMES}
    for imp in project.imports:
        if imp.target in project.modules:
            a, b = layer_of(imp.importer), layer_of(imp.target)
            if a is not None and b is not None and b < a:
                real[LAYER_NAMES[a]].add(LAYER_NAMES[b])
    said = {name: deps for name, deps, _ in documented_layers(DESIGN.read_text("utf-8"))}
    wrong = {name: (sorted(said.get(name, set())), sorted(deps))
             for name, deps in real.items() if said.get(name) != deps}
    assert not wrong, f"design.md's 'imports' (said, real) differ: {wrong}"


def test_the_package_root_keeps_at_most_six_modules():
    root = sorted(p.name for p in PACKAGES["kcbatch"].glob("*.py"))
    assert len(root) <= 6, root


# --------------------------------------------------------------------------- the checkers

def test_layer_checker_flags_a_later_layer_in_any_position(tmp_path):
    pkgs = _write_package(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from pkg.high import b\n",  # in a function
        "low/c.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from pkg.high.b import B\n"),  # for type hints only
        "high/__init__.py": "",
        "high/b.py": "from pkg.low import a\nB = 1\n",  # fine: downward
        "loose.py": "",
    })
    bad = Project.load(pkgs).layer_violations((("pkg.low",), ("pkg.high",), ("pkg",)))
    assert sorted(bad) == [
        "pkg.loose is in no layer"[:0] + "pkg.low.a (pkg/low/a.py:2) imports pkg.high.b, "
        "a later layer (pkg.high after pkg.low)",
        "pkg.low.c (pkg/low/c.py:3) imports pkg.high.b, a later layer (pkg.high after pkg.low)",
    ]
    # A module under no prefix is reported.
    assert Project.load(pkgs).layer_violations((("pkg.low",), ("pkg.high",))) [0] == \
        "pkg is in no layer"


def test_cycles_count_type_checking_imports_and_private_names_are_flagged(tmp_path):
    pkgs = _write_package(tmp_path, {
        "__init__.py": "",
        "x.py": "from .y import _hidden, shown\n",
        "y.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from .x import X\n_hidden = shown = 1\n"),
    })
    p = Project.load(pkgs)
    assert p.cycles() == ["pkg.x -> pkg.y (pkg/x.py:1) -> pkg.x (pkg/y.py:3)"]
    assert p.cycles(type_checking=False) == []
    assert p.private_names() == ["pkg.x (pkg/x.py:1) imports the private name _hidden of pkg.y"]

def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = root / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return {"pkg": root / "pkg"}


def test_cycle_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkgs = _write_package(tmp_path, {
        "__init__.py": "from .a import run\n",
        "a.py": "from .sub import deep\n\ndef run():\n    return deep.x\n",
        "sub/__init__.py": "",
        "sub/deep.py": "import os\n\ndef x():\n    from ..b import helper\n    return helper\n",
        "b.py": "import pkg.a\n",
    })
    cycles = Project.load(pkgs).cycles()
    assert cycles == ["pkg.a -> pkg.sub.deep (pkg/a.py:1) -> pkg.b (pkg/sub/deep.py:4) "
                      "-> pkg.a (pkg/b.py:1)"]


def test_cycle_checker_passes_an_acyclic_package_and_ignores_parents(tmp_path):
    pkgs = _write_package(tmp_path, {
        # The top-level __init__ imports its children, which import siblings
        # through it by absolute name: no edge back to pkg itself.
        "__init__.py": "from .a import run\nfrom . import b\n",
        "a.py": "from pkg.b import helper\nfrom . import c\n",
        "b.py": "from .c import VALUE as helper\n",
        "c.py": "VALUE = 1\n",
        "t.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .u import U\n",
        "u.py": "from .t import T\n",
    })
    p = Project.load(pkgs)
    assert p.cycles(type_checking=False) == []
    g = p.graph()
    assert set(g["pkg"]) == {"pkg.a", "pkg.b"}
    assert set(g["pkg.a"]) == {"pkg.b", "pkg.c"}
    assert set(g["pkg.b"]) == {"pkg.c"}
    assert g["pkg.t"] == {}  # TYPE_CHECKING only


def test_cycle_checker_sees_a_two_module_cycle_through_from_dot_import(tmp_path):
    pkgs = _write_package(tmp_path, {
        "__init__.py": "",
        "x.py": "from . import y\n",
        "y.py": "def f():\n    from . import x\n",
    })
    assert Project.load(pkgs).cycles() == ["pkg.x -> pkg.y (pkg/x.py:1) -> pkg.x (pkg/y.py:2)"]


def test_boundary_checker_flags_each_forbidden_import(tmp_path):
    pkgs = _write_package(tmp_path, {
        "__init__.py": "from .engines import get\n",          # fine: the package itself
        "engines/__init__.py": "from .impl import get\nfrom . import _helpers\n",  # fine: own
        "engines/impl.py": "from ._helpers import h\n\ndef get():\n    import cupy\n",  # fine
        "engines/_helpers.py": "def h():\n    pass\n",
        "user.py": "from .engines.impl import get\n",          # submodule of a sealed package
        "user2.py": "from .engines import impl\n",             # the same, `from P import mod`
        "user3.py": "import pkg.engines._helpers\n",           # sealed and private
        "gpu.py": "import cupy\n",                              # GPU import at module level
        "fine.py": "def f():\n    import cupy_backends.cuda\n",
        "ext.py": "from numpy import _core\nimport numpy._core.multiarray\n",
    })
    bad = Project.load(pkgs).boundary_violations(sealed=("pkg.engines",))
    text = "\n".join(bad)
    assert "pkg.user (pkg/user.py:1) imports pkg.engines.impl; outside pkg.engines" in text
    assert "pkg.user2 (pkg/user2.py:1) imports pkg.engines.impl" in text
    assert "pkg.user3 (pkg/user3.py:1) imports pkg.engines._helpers; outside" in text
    assert "pkg.user3 (pkg/user3.py:1) imports the private module pkg.engines._helpers" in text
    assert "pkg.gpu (pkg/gpu.py:1) imports cupy at module level" in text
    assert "pkg.ext (pkg/ext.py:2) imports the private module numpy._core.multiarray" in text
    # `from numpy import _core` cannot be told from a private *name* without
    # importing numpy; it is not flagged. Nothing else is.
    assert len(bad) == 6, text


def test_only_steps_for_turns_a_time_into_a_step_count():
    """A division by a time step inside round(), ceil() or int() anywhere but
    ``protocol.config.steps_for`` is a second rule for the same count."""
    home = ROOT / "kcbatch" / "protocol" / "config.py"
    found = []
    for path in sorted((ROOT / "kcbatch").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in ("round", "ceil", "floor", "int"):
                continue
            for sub in ast.walk(node.args[0]):
                if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div) \
                        and ast.unparse(sub.right).split(".")[-1] == "dt":
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    if path != home:
                        found.append(where)
    assert found == [], found
