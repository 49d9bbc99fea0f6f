"""Imports to workspace files, per language rule."""

from __future__ import annotations

import pytest

from indexer.extract import Import
from indexer.resolve import WorkspacePaths, resolve_import

PATHS = WorkspacePaths.of(
    [
        "src/shop/__init__.py",
        "src/shop/model.py",
        "src/shop/checkout.py",
        "src/shop/util/__init__.py",
        "src/shop/util/money.py",
        "web/src/cart.ts",
        "web/src/model/item.ts",
        "web/src/model/index.ts",
        "web/src/lib/format.js",
        "internal/model/item.go",
        "internal/model/item_test.go",
        "internal/model/order.go",
        "cmd/app/main.go",
        "crate/src/lib.rs",
        "crate/src/model.rs",
        "crate/src/model/price.rs",
        "crate/src/util/mod.rs",
        "crate/src/cart.rs",
        "java/src/main/java/com/acme/shop/model/Item.java",
        "java/src/main/java/com/acme/shop/model/Order.java",
        "java/src/main/java/com/acme/shop/Cart.java",
        "c/include/model/item.h",
        "c/src/cart.c",
        "c/src/cart.h",
    ]
)


@pytest.mark.parametrize(
    ("importer", "found", "style", "expected"),
    [
        # Python: relative, absolute under src/, a module imported by name, outside packages
        ("src/shop/checkout.py", Import(".model", "Cart", "", 0), "python", ("src/shop/model.py",)),
        (
            "src/shop/util/money.py",
            Import("..model", "Cart", "", 0),
            "python",
            ("src/shop/model.py",),
        ),
        ("src/shop/checkout.py", Import(".", "model", "", 0), "python", ("src/shop/model.py",)),
        ("tests/test_x.py", Import("shop.model", "Cart", "", 0), "python", ("src/shop/model.py",)),
        (
            "tests/test_x.py",
            Import("shop.util", "", "", 0),
            "python",
            ("src/shop/util/__init__.py",),
        ),
        ("src/shop/checkout.py", Import("os.path", "", "", 0), "python", ()),
        ("src/shop/checkout.py", Import("....too.far", "x", "", 0), "python", ()),
        # JS/TS: implied extensions and index files; packages are not ours
        (
            "web/src/cart.ts",
            Import("./model/item", "Item", "", 0),
            "javascript",
            ("web/src/model/item.ts",),
        ),
        (
            "web/src/cart.ts",
            Import("./model", "Item", "", 0),
            "javascript",
            ("web/src/model/index.ts",),
        ),
        (
            "web/src/cart.ts",
            Import("./lib/format.js", "f", "", 0),
            "javascript",
            ("web/src/lib/format.js",),
        ),
        ("web/src/cart.ts", Import("react", "useState", "", 0), "javascript", ()),
        # Go: the package folder by the tail of its import path, without tests
        (
            "cmd/app/main.go",
            Import("github.com/acme/app/internal/model", "", "", 0),
            "go",
            ("internal/model/item.go", "internal/model/order.go"),
        ),
        ("cmd/app/main.go", Import("fmt", "", "", 0), "go", ()),
        # Rust: crate paths, modules in folders, `mod` declarations
        (
            "crate/src/cart.rs",
            Import("crate::model", "Item", "", 0),
            "rust",
            ("crate/src/model.rs",),
        ),
        (
            "crate/src/cart.rs",
            Import("crate::model::price", "Price", "", 0),
            "rust",
            ("crate/src/model/price.rs",),
        ),
        ("crate/src/lib.rs", Import("util", "", "", 0), "rust", ("crate/src/util/mod.rs",)),
        ("crate/src/cart.rs", Import("std::collections", "HashMap", "", 0), "rust", ()),
        # Java: one class per file; a wildcard is the package's folder
        (
            "java/src/main/java/com/acme/shop/Cart.java",
            Import("com.acme.shop.model", "Item", "", 0),
            "java",
            ("java/src/main/java/com/acme/shop/model/Item.java",),
        ),
        (
            "java/src/main/java/com/acme/shop/Cart.java",
            Import("com.acme.shop.model", "*", "", 0),
            "java",
            (
                "java/src/main/java/com/acme/shop/model/Item.java",
                "java/src/main/java/com/acme/shop/model/Order.java",
            ),
        ),
        # C: beside the includer first, then anywhere by its tail
        ("c/src/cart.c", Import("cart.h", "", "", 0), "include", ("c/src/cart.h",)),
        ("c/src/cart.c", Import("model/item.h", "", "", 0), "include", ("c/include/model/item.h",)),
        ("c/src/cart.c", Import("stdio.h", "", "", 0), "include", ()),
    ],
)
def test_resolution(importer: str, found: Import, style, expected: tuple[str, ...]) -> None:
    assert resolve_import(importer, found, style, PATHS) == expected


def test_a_file_never_resolves_to_itself() -> None:
    paths = WorkspacePaths.of(["pkg/__init__.py"])
    assert resolve_import("pkg/__init__.py", Import(".", "", "", 0), "python", paths) == ()
