#!/usr/bin/env python3
"""Fails when the files of a crate import each other in a circle.

Each crate's modules should depend on each other one way, so that a file can
be read with only what it imports in mind. This check builds, per crate, the
graph "file A names an item of file B" from every `crate::`, `super::` and
`self::` path (inside `use` trees too) and reports each strongly connected
set of more than one file.

A parent file that only declares its children (`mod x;`) does not depend on
them; re-exporting (`pub use x::Item;`) does. Test code (`#[cfg(test)]`
modules and files named `tests.rs`) is left out: tests reach into the module
they test by nature.

Circles that are the natural shape of the code are listed in ALLOWED with the
reason; any other circle fails the check.

    scripts/check-circles.py            # the repository this script is in
    scripts/check-circles.py ROOT       # another checkout
"""

import os
import re
import sys
from collections import defaultdict

# (crate folder, files of the circle) -> why it stays.
ALLOWED = {
    ("emulator", frozenset({"formula::eval", "formula::functions"})):
        "a formula evaluator and its functions call each other: a function's "
        "arguments are formulas, and the evaluator calls the functions",
}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals, keeping line count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 40]) and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append("\n" * text.count("\n", i, end) + '""')
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j) + '""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        elif c == "'" and re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12]):
            m = re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_modules(text):
    """Removes `#[cfg(test)] mod name { ... }` blocks."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", text)
        if not m:
            return text
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[:m.start()] + text[j:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as" + IDENT + "$", "", tree.split(" as ")[0])]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:k])
            start = k + 1
    parts.append(inner[start:])
    paths = []
    for part in parts:
        if part:
            paths.extend(prefix + p for p in expand_use_tree(part))
    return paths


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def paths_in(text):
    """Every crate-relative path a file names: `use` trees and inline paths."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]*);", text):
        found.extend(p.replace(" as ", "") for p in expand_use_tree(re.sub(r"\bas\s+" + IDENT, "", m.group(1))))
    body = re.sub(r"\buse\s+[^;]*;", "", text)
    found.extend(m.group(0) for m in re.finditer(r"\b(?:crate|super|self)(?:::(?:super|" + IDENT + r"))+", body))
    return found


def crate_graph(src):
    files = {}
    for folder, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(folder, name)
                module = module_of(src, path)
                if module and module[-1] == "tests":
                    continue
                files[module] = path
    edges = defaultdict(set)
    for module, path in files.items():
        with open(path, encoding="utf-8") as handle:
            text = strip_test_modules(strip_comments_and_strings(handle.read()))
        for found in paths_in(text):
            segments = [s for s in found.split("::") if s]
            if not segments or segments[0] not in ("crate", "super", "self"):
                continue
            head, rest = segments[0], segments[1:]
            if head == "crate":
                base = []
            elif head == "self":
                base = list(module)
            else:
                base = list(module)[:-1]
                while rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            candidate = base + [s for s in rest if s != "self"]
            for k in range(len(candidate), -1, -1):
                target = tuple(candidate[:k])
                if target in files:
                    if target != module:
                        edges[module].add(target)
                    break
    return files, edges


def circles(files, edges):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(files):
        if v not in index:
            visit(v)
    return found


def name(module):
    return "::".join(module) or "lib"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    crates = os.path.join(root, "crates")
    failed = False
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        files, edges = crate_graph(src)
        for component in circles(files, edges):
            names = frozenset(name(m) for m in component)
            if (crate, names) in ALLOWED:
                continue
            failed = True
            print(f"crates/{crate}: these files import each other in a circle:", file=sys.stderr)
            for module in sorted(component):
                inside = sorted(name(t) for t in edges[module] if t in component)
                print(f"  {name(module)} -> {', '.join(inside)}", file=sys.stderr)
    if failed:
        print("Move each item to the module where it belongs so that the files depend on each other one way "
              "(or, where a circle is the natural shape, list it in ALLOWED with the reason).", file=sys.stderr)
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
