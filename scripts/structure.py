#!/usr/bin/env python3
"""The structure of src/: fails on an import cycle, an import against the
layering, or a name on the child side that could allocate, lock or panic.

Usage: scripts/structure.py [--graph]

Every `crate::`, `super::` and `self::` path in a file (outside its
`#[cfg(test)]` module) is an edge from that file's module to the module
the path names. A module using its own submodules is structure, not a
dependency, and is not counted. The rules are the layering described in
the crate docs (src/lib.rs, "Code layout"):

    builder > spawn > guest > attach > running > launch > process > error
      > layers (context, fs, net, resources, command) > child > plan > sys

(RANKS below has the whole order). The layers and the child side never
import the spawn machinery, the running guest or the builder.

The child side (CHILD_FILES: everything that runs after a clone that
shares or copies the caller's memory, up to the exec) may name nothing
that allocates, takes a lock, formats or panics, and may call no libc
function (those may lock or write errno): FORBIDDEN lists the names.
`tests/child_alloc.rs` checks the same at run time.

--graph prints every edge between files instead of checking.
"""

import os
import re
import sys
from collections import defaultdict

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# The layering, bottom up: a module may import only modules of a lower
# rank (and its own submodules). `child` and the layers stand on `plan`
# and the leaves, never on each other.
RANKS = [
    {"failpoint"},  # failure injection for tests: below everything
    {"sys", "signal", "patience"},  # raw system calls; leaf helpers
    {"plan", "status"},  # data the child follows; exit statuses
    {"child"},  # everything after the clone (plan and sys only)
    {"context", "fs", "net", "resources", "command"},  # the layers
    {"error"},  # the crate's error, over the layers' own
    {"process"},  # a process started in a guest
    {"launch"},  # the parent's side of one clone (spawn and enter)
    {"running"},  # what Guest and AttachedGuest share
    {"attach"},
    {"guest"},
    {"spawn"},  # the phases of a spawn
    {"builder"},
]
RANK = {m: i for i, group in enumerate(RANKS) for m in group}
ONLY = {"child": {"plan", "sys", "failpoint"}}


# Files whose code runs after the clone (their test modules excepted).
CHILD_FILES = ["child/*.rs", "sys/raw.rs", "sys/call/*.rs", "plan/wire.rs"]
# child/mod.rs is the door: it runs in the parent, before the clone.
CHILD_DOORS = ["child/mod.rs"]
FORBIDDEN = [
    (r"\b(std|alloc)::", "the standard library"),
    (r"\b(Box|Vec|String|Rc|Arc|BTreeMap|HashMap|CString|OsString|PathBuf)\b", "an allocating type"),
    (r"\b(format|vec|println|eprintln|print|eprint|write|writeln|dbg)!", "a formatting or allocating macro"),
    (r"\b(panic|unreachable|todo|unimplemented|assert|assert_eq|assert_ne)!", "a panic"),
    (r"\.(unwrap|expect|unwrap_err|expect_err)\(", "a panic"),
    (r"\b(to_string|to_owned|to_vec|collect|into_boxed_slice|clone)\(", "an allocation"),
    (r"\b(Mutex|RwLock|OnceLock|OnceCell|Condvar|LazyLock|thread_local)\b", "a lock"),
    (r"\blibc::[a-z_0-9]+\s*\(", "a libc function"),
]


def check_unsafe(raw_by_path):
    """`unsafe` only in the raw system-call layer and the child side."""
    problems = []
    for rel, text in sorted(raw_by_path.items()):
        if rel.startswith(("sys/", "child/")):
            continue
        text = re.sub(r"//[^\n]*", "", text)
        for n, line in enumerate(text.split("\n"), 1):
            if re.search(r"\bunsafe\b", line):
                problems.append(f"src/{rel}:{n}: unsafe outside src/sys/ and src/child/")
    return problems


def check_child(files_by_path):
    import fnmatch
    problems = []
    for rel, text in sorted(files_by_path.items()):
        if not any(fnmatch.fnmatch(rel, pat) for pat in CHILD_FILES) or rel in CHILD_DOORS:
            continue
        for n, line in enumerate(text.split("\n"), 1):
            for pattern, what in FORBIDDEN:
                m = re.search(pattern, line)
                if m:
                    problems.append(f"src/{rel}:{n}: {what} after the clone: {m.group(0)!r}")
    return problems


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel == ["lib"]:
        rel = []
    return tuple(rel)


def strip(text):
    """Blanks comments, string literals and the test module (lines kept)."""
    m = re.search(r"^\s*#\[cfg\(test\)\]\s*\n\s*mod \w+\s*\{", text, re.M)
    if m:
        text = text[: m.start()]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    return text


def expand(tree):
    """Expands a use tree (`a::{b, c::{d, self}}`) into paths."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    head, body = tree[:i], tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += [head + q if q != "self" else head.rstrip(":") for q in expand(p)]
    return out


def main():
    files, by_path, raw = {}, {}, {}
    for dirpath, _, names in os.walk(SRC):
        for n in names:
            # main.rs: the init image, a program of its own; tests.rs: a
            # test module in a file of its own (`#[cfg(test)] mod tests;`).
            if n.endswith(".rs") and n not in ("main.rs", "tests.rs"):
                p = os.path.join(dirpath, n)
                text = open(p).read()
                raw[os.path.relpath(p, SRC)] = text
                files[module_of(p)] = by_path[os.path.relpath(p, SRC)] = strip(text)
    modules = set(files)

    # Names the crate root re-exports, to the module they come from.
    root_names = {}
    for tree in re.findall(r"pub use ([^;]+);", files[()]):
        for p in expand(tree):
            parts = p.split("::")
            root_names[parts[-1]] = tuple(parts[:-1][:1])

    def resolve(mod, path):
        parts = [p for p in path.split("::") if p]
        if parts[0] == "crate":
            base, rest = (), parts[1:]
        elif parts[0] in ("super", "self"):
            base = mod
            while parts and parts[0] in ("super", "self"):
                if parts[0] == "super":
                    base = base[:-1]
                parts = parts[1:]
            rest = parts
        else:
            return None
        best = base
        for i in range(1, len(rest) + 1):
            if base + tuple(rest[:i]) in modules:
                best = base + tuple(rest[:i])
            else:
                break
        if best == () and rest and rest[0] in root_names:
            best = root_names[rest[0]]
        return best

    edges = defaultdict(set)
    for mod, text in files.items():
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", text):
            paths += expand(tree)
        paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", text)
        for p in paths:
            if not re.match(r"(crate|super|self)\b", p):
                continue
            target = resolve(mod, p)
            if target is None or target == mod:
                continue
            if target[: len(mod)] == mod:  # its own submodule
                continue
            edges[mod].add(target)

    name = lambda m: "::".join(m) or "crate"
    if "--graph" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{name(a)} -> {name(b)}")
        return 0

    problems = []
    # Cycles between files, then between top-level modules.
    def sccs(nodes, adj):
        index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in adj.get(v, ()):
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

        for v in sorted(nodes):
            if v not in index:
                visit(v)
        return out

    sys.setrecursionlimit(10000)
    for comp in sccs(modules, edges):
        problems.append("import cycle between files: " + ", ".join(name(m) for m in comp))
    top = defaultdict(set)
    for a, bs in edges.items():
        for b in bs:
            if a[:1] != b[:1] and a and b:
                top[a[:1]].add(b[:1])
    for comp in sccs({m[:1] for m in modules if m}, top):
        problems.append("import cycle between modules: " + ", ".join(name(m) for m in comp))
    problems += check_child(by_path)
    problems += check_unsafe(raw)
    for m in sorted({m[0] for m in modules if m}):
        if m not in RANK:
            problems.append(f"{m}: a top-level module scripts/structure.py does not rank")
    for a, bs in sorted(edges.items()):
        if not a:
            continue
        for b in sorted(bs):
            if not b or a[0] == b[0] or a[0] not in RANK or b[0] not in RANK:
                continue
            if b[0] not in ONLY.get(a[0], {b[0]}):
                problems.append(f"{name(a)} imports {name(b)}: {a[0]} may import only {sorted(ONLY[a[0]])}")
            elif RANK[b[0]] >= RANK[a[0]]:
                problems.append(f"{name(a)} imports {name(b)}: {b[0]} does not stand below {a[0]}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"scripts/structure.py: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
