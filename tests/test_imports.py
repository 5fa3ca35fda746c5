"""No import cycles among trainfree's modules and no import from a lower layer to a higher one, read
statically from the source (every import statement, including those inside functions, counts: a lazy
import only hides a cycle until the call)."""
import ast
import pathlib

import trainfree

ROOT = pathlib.Path(trainfree.__file__).parent

def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["trainfree", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the trainfree modules it names in an import statement (packages by their __init__)."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from pkg import name`: pkg's __init__ runs, and name may be a submodule. A submodule
                # taken from its own package (html.py's `from trainfree.report import plots`) does not
                # need the package's __init__ to have finished: that edge is left out.
                subs = [f"{base}.{a.name}" for a in node.names]
                ancestor = m.startswith(base + ".") and all(s in mods for s in subs)
                targets = subs if ancestor else [base] + subs
            else:
                continue
            graph[m].update(t for t in targets if t in mods and t != m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_relative_and_package_imports():
    graph = import_graph()
    assert "trainfree.executors" in graph["trainfree.runner"]  # imported inside a function
    assert "trainfree.metrics.base" in graph["trainfree.metrics.proxies"]
    assert "trainfree.registry" in graph["trainfree.spaces"]  # a package's __init__ is a module too
    assert "trainfree.metrics.base" in graph["trainfree.runner"]  # `from trainfree.metrics.base import ...`


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


#: the layers, lowest first (docs/architecture.md): a module may import its own layer and those below
LAYERS = (
    ("errors", "config", "registry", "records", "files"),
    ("probe", "linalg", "data"),
    ("spaces",),
    ("metrics", "benchmarks", "archs"),
    ("executors", "outcomes", "runner", "scores", "store"),
    ("search", "evaluation", "train", "suite"),
    ("report",),
    ("api",),
    ("cli", "__main__"),
)


def layer_of(module: str) -> int:
    """The layer of a trainfree module, by its first name below the package (the package itself: -1)."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
                  for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m) >= 0)


def test_the_layer_check_finds_an_upward_import():
    graph = {"trainfree.spaces.x": {"trainfree.metrics.y"}, "trainfree.metrics.y": {"trainfree.spaces.x"},
             "trainfree.api": {"trainfree.runner"}}
    assert upward_imports(graph) == ["trainfree.spaces.x (layer 2) imports trainfree.metrics.y (layer 3)"]


def test_imports_only_point_down_the_layers():
    found = upward_imports(import_graph())
    assert not found, "upward imports: " + "; ".join(found)


def test_the_scoring_core_names_no_space():
    # the runner, the per-architecture scoring and the executors ask the space object, never a name
    import re

    for module in ("runner", "outcomes", "executors"):
        text = (ROOT / f"{module}.py").read_text()
        named = re.findall(r"[\"'](nasbench-nlp|nasbench-bert|decoder|hf-llama|hf-gpt2)[\"']", text)
        assert not named, f"trainfree/{module}.py names space(s) {named}"
