#!/usr/bin/env python3
"""Import cycles among the top-level modules of one Rust crate.

Usage: scripts/import-cycles.py CRATE/src

Every file under the directory belongs to a top-level module: `src/foo.rs` and everything
under `src/foo/` are `foo`. A file that names `crate::foo` (in a `use`, grouped
`use crate::{foo, bar::Baz}` included, or as a path in code) depends on `foo`; a name the
crate root re-exports (`pub use foo::Thing;` in lib.rs, then `crate::Thing`) counts as
`foo`. The crate roots (lib.rs, main.rs) are not modules of their own. Comments are
ignored. Prints each cycle (a strongly connected group of two or more modules, with one
circle through it) and exits 1 if there is one; prints the module order and exits 0 if not.
"""

import os
import re
import sys

ROOTS = {"lib.rs", "main.rs"}


def strip_comments(text):
    """Drops `//` comments (doc comments included) and `/* */` blocks; keeps strings."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        in_str = False
        cut = len(line)
        i = 0
        while i < len(line):
            c = line[i]
            if c == "\\" and in_str:
                i += 2
                continue
            if c == '"':
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
            i += 1
        out.append(line[:cut])
    return "\n".join(out)


def split_group(body):
    """Splits the inside of `{...}` at top-level commas."""
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur.strip())
    return parts


def first_segments(tree):
    """The first path segment of every path in a use tree like `a::b`, `{a, b::{c, d}}`."""
    tree = tree.strip()
    if tree.startswith("{") and tree.endswith("}"):
        segs = []
        for part in split_group(tree[1:-1]):
            segs.extend(first_segments(part))
        return segs
    head = re.split(r"::|\s", tree, maxsplit=1)[0]
    return [head] if head and head not in ("self", "*") else []


def module_of(src, path):
    rel = os.path.relpath(path, src)
    top = rel.split(os.sep)[0]
    if top in ROOTS:
        return None
    return top[:-3] if top.endswith(".rs") else top


def reexports(src):
    """Names the crate root re-exports, mapped to the top-level module they come from."""
    names = {}
    lib = os.path.join(src, "lib.rs")
    if not os.path.exists(lib):
        return names
    text = strip_comments(open(lib, encoding="utf-8").read())
    for m in re.finditer(r"pub\s+use\s+(?:crate::)?(\w+)::([^;]+);", text):
        module, rest = m.group(1), m.group(2).strip()
        if rest.startswith("{"):
            items = split_group(rest[1:-1])
        else:
            items = [rest]
        for item in items:
            name = item.split(" as ")[-1].split("::")[-1].strip()
            if name and name != "self":
                names[name] = module
    return names


def dependencies(src):
    names = reexports(src)
    modules = set()
    deps = {}
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".rs"):
                mod = module_of(src, os.path.join(dirpath, f))
                if mod:
                    modules.add(mod)
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            mod = module_of(src, path)
            if mod is None:
                continue
            text = strip_comments(open(path, encoding="utf-8").read())
            used = set()
            for m in re.finditer(r"\buse\s+crate::(\{.*?\}|[^;]+);", text, flags=re.S):
                used.update(first_segments(m.group(1)))
            for m in re.finditer(r"\bcrate::(\w+)", text):
                used.add(m.group(1))
            for name in used:
                target = name if name in modules else names.get(name)
                if target and target != mod:
                    deps.setdefault(mod, {}).setdefault(target, set()).add(os.path.relpath(path, src))
    return modules, deps


def cycles(modules, deps):
    """Tarjan's strongly connected components of two or more modules."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


def circle(comp, deps):
    """One circle through the first module of a component, for the report."""
    start = comp[0]
    members = set(comp)
    path, seen = [start], {start}

    def walk(v):
        for w in sorted(deps.get(v, {})):
            if w not in members:
                continue
            if w == start and len(path) > 1:
                return True
            if w not in seen:
                seen.add(w)
                path.append(w)
                if walk(w):
                    return True
                path.pop()
        return False

    walk(start)
    return path + [start]


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: import-cycles.py CRATE/src", file=sys.stderr)
        return 2
    src = sys.argv[1]
    modules, deps = dependencies(src)
    found = cycles(modules, deps)
    if not found:
        print(f"{src}: no import cycle among {len(modules)} top-level modules")
        return 0
    for comp in found:
        ring = circle(comp, deps)
        print(f"{src}: import cycle among {', '.join(comp)}")
        for a, b in zip(ring, ring[1:]):
            print(f"  {a} -> {b}   ({', '.join(sorted(deps[a][b]))})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
