"""From an import statement to the workspace files it names.

Each language's rule (`IndexLanguage.import_style`) turns an import's source into candidate
paths: Python's dotted and relative modules (with `src/`-style layouts found by suffix), JS/TS
relative specifiers with their implied extensions and `index` files, Go package folders,
Rust `crate::`/`self::`/`super::` paths and `mod` declarations, Java packages (one public
class per file), and C/C++ `#include "..."`. Imports of things outside the workspace
(the standard library, installed packages) resolve to nothing, which is the right answer: the
model knows those already.

Pure path arithmetic over a snapshot of the indexed paths; no disk, no store.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from indexer.extract import Import
from indexer.languages import ImportStyle

_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_RUST_ROOTS = frozenset({"crate", "self", "super"})
_RUST_EXTERNAL = frozenset({"std", "core", "alloc"})
_MODULE_FILES = ("mod.rs", "lib.rs", "main.rs")


@dataclass(frozen=True)
class WorkspacePaths:
    """The indexed paths, looked up by file name and by folder."""

    paths: frozenset[str]
    by_name: Mapping[str, tuple[str, ...]]
    by_folder: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, paths: Iterable[str]) -> WorkspacePaths:
        by_name: dict[str, list[str]] = defaultdict(list)
        by_folder: dict[str, list[str]] = defaultdict(list)
        unique = frozenset(paths)
        for path in sorted(unique):
            folder, _, name = path.rpartition("/")
            by_name[name].append(path)
            by_folder[folder].append(path)
        return cls(
            unique,
            {name: tuple(found) for name, found in by_name.items()},
            {folder: tuple(found) for folder, found in by_folder.items()},
        )

    def ending_with(self, tail: str) -> tuple[str, ...]:
        """Paths that are `tail` or end with "/" + `tail`, the shortest (likeliest) first."""
        name = tail.rpartition("/")[2]
        found = [path for path in self.by_name.get(name, ()) if _ends_with(path, tail)]
        return tuple(sorted(found, key=len))

    def folders_ending_with(self, tail: str) -> tuple[str, ...]:
        return tuple(
            sorted((folder for folder in self.by_folder if _ends_with(folder, tail)), key=len)
        )


def _ends_with(path: str, tail: str) -> bool:
    return path == tail or path.endswith("/" + tail)


def resolve_import(
    importer: str, found: Import, style: ImportStyle, paths: WorkspacePaths
) -> tuple[str, ...]:
    """The workspace files an import of `importer` names: the module's own file(s), or the
    file that defines the imported name where the language puts one name in one file."""
    resolver = _RESOLVERS[style]
    return tuple(path for path in resolver(importer, found, paths) if path != importer)


def _python(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    source = found.source
    level = len(source) - len(source.lstrip("."))
    dotted = [part for part in source[level:].split(".") if part]
    if level:
        base = importer.split("/")[:-1]
        if level - 1 > len(base):
            return ()
        parts = base[: len(base) - (level - 1)] + dotted
    else:
        parts = dotted
    # `from pkg import mod` imports a module when there is one by that name, else a name
    # defined in the package.
    modules = [parts + [found.name], parts] if found.name and found.name != "*" else [parts]
    for module in modules:
        if not module:
            continue
        stem = "/".join(module)
        results: list[str] = []
        for candidate in (f"{stem}.py", f"{stem}.pyi", f"{stem}/__init__.py"):
            if level:
                if candidate in paths.paths:
                    results.append(candidate)
            else:
                # Absolute: the package may live under src/ or lib/, so match the tail.
                results.extend(paths.ending_with(candidate)[:2])
        if results:
            return tuple(dict.fromkeys(results))
    return ()


def _javascript(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    if not found.source.startswith("."):
        return ()  # a package from node_modules, or a path alias we cannot see
    base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), found.source))
    if base.startswith(".."):
        return ()
    candidates = [base] + [base + ext for ext in _JS_EXTENSIONS]
    candidates += [f"{base}/index{ext}" for ext in _JS_EXTENSIONS]
    for candidate in candidates:
        if candidate in paths.paths:
            return (candidate,)
    return ()


def _go(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    segments = [segment for segment in found.source.split("/") if segment]
    if not segments or "." not in segments[0] and len(segments) < 2:
        return ()  # the standard library ("fmt", "strings")
    # The workspace holds the module's tree under some folder: the longest tail of the
    # import path that is a folder here names the package.
    for start in range(len(segments)):
        folders = paths.folders_ending_with("/".join(segments[start:]))
        if folders:
            files = paths.by_folder[folders[0]]
            return tuple(
                path for path in files if path.endswith(".go") and not path.endswith("_test.go")
            )
    return ()


def _rust(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    segments = [segment for segment in found.source.split("::") if segment]
    if not segments or segments[0] in _RUST_EXTERNAL:
        return ()
    folder, _, name = importer.rpartition("/")
    # The folder that holds this module's children: src/a/ for src/a.rs and src/a/mod.rs.
    here = folder if name in _MODULE_FILES else posixpath.join(folder, name[: -len(".rs")])
    if segments[0] == "crate":
        tails = ["/".join(segments[1:])]
    elif segments[0] in ("self", "super"):
        base = here
        for segment in segments:
            if segment == "super":
                base = posixpath.dirname(base)
            elif segment != "self":
                base = posixpath.join(base, segment)
        tails = [base]
    else:
        # `mod util;` or a path starting at a sibling module.
        tails = [posixpath.join(here, "/".join(segments)).lstrip("/"), "/".join(segments)]
    results: list[str] = []
    for tail in tails:
        if not tail:
            results += [p for p in paths.paths if p.rpartition("/")[2] in ("lib.rs", "main.rs")]
            continue
        for candidate in (f"{tail}.rs", f"{tail}/mod.rs"):
            results.extend(paths.ending_with(candidate)[:1])
        if found.name and found.name not in ("*", "self"):
            # `use crate::a::b` where b is a module of its own
            for candidate in (f"{tail}/{found.name}.rs", f"{tail}/{found.name}/mod.rs"):
                results.extend(paths.ending_with(candidate)[:1])
        if results:
            break
    return tuple(dict.fromkeys(results))


def _java(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    folder = found.source.replace(".", "/")
    if found.name == "*":
        folders = paths.folders_ending_with(folder)
        return (
            tuple(p for p in paths.by_folder[folders[0]] if p.endswith(".java")) if folders else ()
        )
    for candidate in (f"{folder}/{found.name}.java", f"{folder}.java"):  # the latter: static
        matches = paths.ending_with(candidate)
        if matches:
            return matches[:1]
    return ()


def _include(importer: str, found: Import, paths: WorkspacePaths) -> tuple[str, ...]:
    beside = posixpath.normpath(posixpath.join(posixpath.dirname(importer), found.source))
    if beside in paths.paths:
        return (beside,)
    return paths.ending_with(posixpath.normpath(found.source).lstrip("./"))[:1]


_RESOLVERS = {
    "python": _python,
    "javascript": _javascript,
    "go": _go,
    "rust": _rust,
    "java": _java,
    "include": _include,
}
