"""Architecture figures: modules per folder, longest functions, import cycles, places reading the environment.

Usage: `python bench/architecture.py [REPO_ROOT]`. Every import counts, lazy and TYPE_CHECKING ones included.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

TOP = ("flows", "tasks", "blocks")  # installed as vodflow.flows, vodflow.tasks, vodflow.blocks


def python_files(root: Path) -> list[Path]:
    """The product's modules: `vodflow/` and the top-level folders (not through the package's links)."""
    found = []
    for folder in ("vodflow", *TOP):
        for path in (root / folder).rglob("*.py"):
            inside = path.relative_to(root / folder).parts
            if "__pycache__" in inside or (folder == "vodflow" and inside[0] in TOP):
                continue
            found.append(path)
    return found


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] in TOP:
        parts.insert(0, "vodflow")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(tree: ast.AST) -> list[str]:
    """Absolute names imported anywhere in a module (`from a import b` gives `a.b`)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def main(root: Path) -> None:
    files = python_files(root)
    trees = {path: ast.parse(path.read_text()) for path in files}
    modules = {module_name(root, path): path for path in files}

    def resolve(name: str) -> str | None:
        if name.split(".")[0] in TOP:
            name = "vodflow." + name
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {name: set() for name in modules}
    functions, env_reads = [], []
    for name, path in modules.items():
        tree = trees[path]
        graph[name] = {target for i in imports(tree) if (target := resolve(i)) and target != name}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                if isinstance(node.value, ast.Name) and node.value.id == "os":
                    env_reads.append(str(path.relative_to(root)))
    per_folder = Counter(str(path.parent.relative_to(root)) for path in files)
    print("modules per folder:", dict(sorted(per_folder.items())))
    print("longest functions (lines):", sorted(functions, reverse=True)[:5])
    readers = sorted(set(env_reads))
    print(f"environment read in {len(env_reads)} places in {len(readers)} modules: {readers}")
    found = cycles(graph)
    print(f"import cycles: {len(found)} {found}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
