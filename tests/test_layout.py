"""The package's shape: imports point one way (no cycles, module-level or inside functions), stages sit in layers,
and the annotate path loads no training code. Built from the source with `ast`, so a new import that breaks the
shape fails here, naming the cycle or the edge."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emocli"

#: Lower layers never import higher ones; one layer's modules import each other freely (but without cycles).
LAYERS = [
    {"errors", "labels", "files", "device", "environment"},
    {"media"},
    {"text"},
    {"signals"},
    {"model"},
    {"outputs"},
    {"pipeline", "training"},
    {"info", "synth", "api", "emocli", "cli", "__main__"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The emocli modules `path` imports anywhere in it (function bodies included; `if TYPE_CHECKING:` blocks,
    which never run, left out)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            # `from .x import y`: the module x.y where y is one, else x itself (y is a name in it)
            targets = [f"{root}.{a.name}" if f"{root}.{a.name}" in modules else root for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    return next(i for i, layer in enumerate(LAYERS) if key in layer)


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_belongs_to_a_layer_and_imports_point_down():
    graph = import_graph()
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)]
    assert not upward, "imports that point up a layer: " + "; ".join(sorted(upward))


def test_each_stage_folder_says_what_it_does():
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{folder.name}/__init__.py needs a docstring saying what the stage does"


def test_the_command_line_loads_no_pytorch_and_no_training_code():
    code = ("import sys, emocli.cli; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('emocli.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_an_annotate_call_loads_no_training_code(media_dir, six_cue_srt, text_model, tmp_path):
    code = ("import sys, emocli; "
            f"emocli.annotate({str(media_dir / 'both.mp4')!r}, subs={str(six_cue_srt)!r}, model={str(text_model)!r}, "
            f"formats='all', output_dir={str(tmp_path)!r}, plot=True); "
            "print(sorted(m for m in sys.modules if m.startswith('emocli.training')) or 'none')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().split("\n")[-1] == "none"
    assert (tmp_path / "both.emotions.html").is_file()
