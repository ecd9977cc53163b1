"""Imports run one way: the import graph of ``callpipe/`` has no cycle and no arrow against the layers.

Every ``import`` / ``from ... import`` statement counts, at any depth (inside functions too),
except those under ``if TYPE_CHECKING:``, which never run and only name types for annotations.
An import names the most specific module it loads: ``from callpipe.storage import index`` is an
arrow to ``callpipe.storage.index``; ``from callpipe.storage import RecordingStore`` one to the
package ``callpipe.storage`` (its ``__init__``).

The layers below are the README's "Where things live" map as data: a module may import its own
layer and the layers listed before it, never a later one. A module belongs to the layer of its
longest matching prefix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "callpipe"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Leaf helpers that import no other callpipe layer: the metadata contract, settings,
    # audio probing/decoding, atomic files for the model caches, OpenMP knobs.
    (
        "foundation",
        (
            "callpipe",
            "callpipe.schema",
            "callpipe.settings",
            "callpipe.audio_files",
            "callpipe.files",
            "callpipe.openmp",
            "callpipe.faultpoints",
        ),
    ),
    ("storage", ("callpipe.storage", "callpipe.catalog")),
    # Rule-based personal-data finding, shared by the recorder (redaction of the live transcript)
    # and the offline stages: redaction, spoken-form parsing and the entity passes. The spaCy
    # names pass loads its model lazily, only when asked for names.
    (
        "personal data",
        (
            "callpipe.pii",
            "callpipe.analysis.spoken",
            "callpipe.analysis.entities",
            "callpipe.analysis.entity_passes",
        ),
    ),
    ("recorder", ("callpipe.recorder",)),
    (
        "offline stages",
        (
            "callpipe.stt",
            "callpipe.speakers",
            "callpipe.correction",
            "callpipe.analysis",
            "callpipe.categories",
        ),
    ),
    (
        "offline runner",
        (
            "callpipe.stage_list",
            "callpipe.stage_runner",
            "callpipe.finalizer",
            "callpipe.failures",
            "callpipe.leases",
            "callpipe.summary",
            "callpipe.erasure",
            "callpipe.retention",
        ),
    ),
    # The calls / turns / entities tables written from the finished documents and read by the
    # Dagster assets, the API and BI tools.
    ("analytics tables", ("callpipe.analytics",)),
    ("dagster shell", ("callpipe.defs", "callpipe.deploy")),
    (
        "command line",
        (
            "callpipe.cli",
            "callpipe.batch",
            "callpipe.supervise",
            "callpipe.demo_command",
            "callpipe.demo_calls",
        ),
    ),
]
"""Lowest first. ``demo_calls`` (espeak-ng demo dialogues) sits with the command that uses it."""

SERVICE = "callpipe.service"
"""The HTTP API sits beside the command line: it may import every layer except the command line
and the Dagster shell's internals (only the modules in :data:`SERVICE_MAY_USE_FROM_DEFS`)."""
SERVICE_MAY_USE_FROM_DEFS = ("callpipe.defs.launch", "callpipe.defs.tags", "callpipe.defs.partitions")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` bodies."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific module of callpipe that importing ``name`` loads (None: not callpipe)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the callpipe modules it imports (itself left out)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets.update(_target(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.add(submodule if submodule in modules else _target(source, modules))
        targets.discard(None)
        targets.discard(name)
        graph[name] = {t for t in targets if t is not None}
    return graph


def layer_of(module: str) -> int | None:
    """Index of the module's layer in :data:`LAYERS` (longest prefix wins); None for the service."""
    if module == SERVICE or module.startswith(SERVICE + "."):
        return None
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__name__}")
    return best


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every arrow against the layer order, as ``"a (layer) -> b (layer)"``."""
    names = [name for name, _ in LAYERS]
    cli = names.index("command line")
    bad = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module)
        for target in sorted(targets):
            there = layer_of(target)
            if here is None:  # the service: anything but the command line and defs internals
                public = target.startswith(SERVICE_MAY_USE_FROM_DEFS)
                internal = target.startswith("callpipe.defs") and not public
                if there is not None and (there >= cli or internal):
                    bad.append(f"{module} (service) -> {target} ({names[there]})")
            elif there is None:
                if here != cli:
                    bad.append(f"{module} ({names[here]}) -> {target} (service)")
            elif there > here:
                bad.append(f"{module} ({names[here]}) -> {target} ({names[there]})")
    return bad


def test_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "callpipe.recorder.online" in graph
    # Imported inside a function only (a lazy model load): the graph must still see it.
    assert "callpipe.stt" in graph["callpipe.stage_list"]
    assert "callpipe.storage.index" in graph["callpipe.storage.blob_store"]


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_imports_follow_the_layers() -> None:
    bad = layer_violations(import_graph())
    assert bad == [], "imports against the layer order:\n" + "\n".join(bad)


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        layer_of(module)


def test_recorder_imports_nothing_offline() -> None:
    graph = import_graph()
    offline = LAYERS[[n for n, _ in LAYERS].index("offline stages")][1]
    for module, targets in graph.items():
        if module.startswith("callpipe.recorder"):
            assert not {t for t in targets if t.startswith(offline)}, module


def test_module_names_are_unique() -> None:
    """One file name per module across the package (a per-package ``errors.py`` is allowed)."""
    seen: dict[str, str] = {}
    for module, path in _modules().items():
        stem = path.stem
        if stem in ("__init__", "errors"):
            continue
        assert stem not in seen, f"{module} and {seen[stem]} share the name {stem}.py"
        seen[stem] = module


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert find_cycles(graph) == expected


def _readme_layers() -> dict[str, set[str]]:
    """Layer name -> modules of the README's "Where things live" table, as dotted names."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("layer", "---"):
            continue
        paths = [p.strip("`") for p in cells[1].split(", ")]
        layers[cells[0]] = {"callpipe." + p.removesuffix(".py").strip("/").replace("/", ".") for p in paths}
    return layers


def test_readme_map_matches_the_layers() -> None:
    readme = _readme_layers()
    expected = {name: {p for p in prefixes if p != "callpipe"} for name, prefixes in LAYERS}
    expected["service"] = {SERVICE}
    assert readme == expected
