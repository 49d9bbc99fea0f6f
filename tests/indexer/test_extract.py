"""Symbols, imports and chunks from real grammars, one sample file per language."""

from __future__ import annotations

import index_samples as samples
import pytest

from indexer.extract import CHUNK_MAX_LINES, extract
from indexer.languages import LANGUAGES, language_for_id, language_for_path, load


def entry(path: str, text: str):
    row = language_for_path(path)
    assert row is not None
    loaded = load(row)
    assert loaded is not None
    return extract(path, text, loaded)


def outline(path: str, text: str) -> set[tuple[str, str, str]]:
    return {(s.kind, s.qualified_name, s.parent) for s in entry(path, text).symbols}


@pytest.mark.parametrize("row", LANGUAGES, ids=lambda row: row.name)
def test_every_row_loads_its_grammar_and_query(row) -> None:
    loaded = load(row)
    assert loaded is not None, f"grammar wheel {row.module} is missing"
    assert loaded.symbols_query.pattern_count > 0
    assert loaded.references_query.pattern_count > 0
    assert loaded.keywords  # from the grammar itself, not a hand-written list
    for extension in row.extensions:
        assert language_for_path(f"src/x{extension}") is row
    for language_id in row.language_ids:
        assert language_for_id(language_id) is row


def test_python_symbols_docstrings_and_no_locals() -> None:
    found = {s.qualified_name: s for s in entry("shop/model.py", samples.PYTHON).symbols}
    assert set(found) == {
        "shop.model.LIMIT",
        "shop.model.Cart",
        "shop.model.Cart.size",
        "shop.model.Cart.add",
    }
    cart, add = found["shop.model.Cart"], found["shop.model.Cart.add"]
    assert (cart.kind, cart.signature, cart.doc) == ("class", "class Cart(Base):", "A cart.")
    assert (add.kind, add.parent, add.signature) == ("method", "Cart", "def add(self, item):")
    assert add.doc == "Adds an item."
    assert (cart.start_line, cart.end_line) == (9, 22)
    assert found["shop.model.Cart.size"].kind == "field"


def test_python_imports_keep_sources_names_and_aliases() -> None:
    imports = {
        (i.source, i.name, i.alias, i.local_name) for i in entry("a.py", samples.PYTHON).imports
    }
    assert imports == {
        ("os.path", "", "", "os"),
        ("json", "", "j", "j"),
        (".", "sibling", "", "sibling"),
        ("..pkg.mod", "Thing", "T", "T"),
        ("..pkg.mod", "other", "", "other"),
        (".x", "*", "", ""),
    }


def test_go_methods_belong_to_their_receiver_type() -> None:
    assert outline("store/server.go", samples.GO) == {
        ("struct", "store.Server", ""),
        ("field", "store.Server.Name", "Server"),
        ("field", "store.Server.port", "Server"),
        ("interface", "store.Handler", ""),
        ("method", "store.Handler.Serve", "Handler"),
        ("constant", "store.Limit", ""),
        ("method", "store.Server.Start", "Server"),
        ("function", "store.NewServer", ""),
    }
    symbols = {s.name: s for s in entry("store/server.go", samples.GO).symbols}
    assert symbols["Server"].doc == "Server serves things."
    assert symbols["Start"].signature == "func (s *Server) Start(ctx int) error"
    assert symbols["NewServer"].signature == "func NewServer(name string) *Server"
    imports = {(i.source, i.local_name) for i in entry("x.go", samples.GO).imports}
    assert imports == {
        ("fmt", "fmt"),
        ("strings", "st"),
        ("github.com/acme/app/internal/model", "model"),
    }


def test_rust_impl_blocks_give_methods_their_type() -> None:
    symbols = {s.qualified_name: s for s in entry("src/cart.rs", samples.RUST).symbols}
    assert symbols["Cart.add"].kind == "method"
    assert symbols["Cart.add"].doc == "Adds."
    assert symbols["Cart"].doc == "A cart."
    assert symbols["Cart.items"].signature == "pub items: Vec<Item>"  # not the struct's line
    assert "Cart" in symbols and "checkout" in symbols and "MAX" in symbols
    assert all(s.kind != "impl" for s in symbols.values())
    imports = {(i.source, i.name, i.local_name) for i in entry("src/cart.rs", samples.RUST).imports}
    assert ("crate::model", "Order", "O") in imports
    assert ("util", "", "util") in imports


def test_java_javadoc_and_package_prefix() -> None:
    symbols = {s.qualified_name: s for s in entry("src/Cart.java", samples.JAVA).symbols}
    assert symbols["com.acme.shop.Cart"].doc == "A cart of items."
    assert symbols["com.acme.shop.Cart.add"].doc == "Adds an item."
    assert symbols["com.acme.shop.Cart.add"].signature == "public int add(Item item)"
    assert symbols["com.acme.shop.Cart.Color.RED"].kind == "constant"
    imports = {(i.source, i.name) for i in entry("src/Cart.java", samples.JAVA).imports}
    assert imports == {("com.acme.shop.model", "Item"), ("java.util", "*")}


def test_c_and_cpp_definitions_and_includes() -> None:
    c = outline("include/cart.h", samples.C)
    assert ("function", "cart_add", "") in c  # a prototype, from a header
    assert ("field", "cart.items", "cart") in c
    assert ("type", "cart_t", "") in c and ("macro", "MAX_ITEMS", "") in c
    cpp = outline("src/basket.cpp", samples.CPP)
    # Declared in the class and defined outside it: both are methods of shop.Basket.
    assert [k for k in cpp if k[1] == "shop.Basket.add"] == [
        ("method", "shop.Basket.add", "shop.Basket")
    ]
    assert ("field", "shop.Basket.total_", "shop.Basket") in cpp
    [include] = entry("src/basket.cpp", samples.CPP).imports
    assert include.source == "shop/cart.hpp"


def test_typescript_and_javascript() -> None:
    ts = {s.qualified_name: s for s in entry("src/cart.ts", samples.TYPESCRIPT).symbols}
    assert ts["Cart"].signature == "export class Cart extends Base"
    assert ts["Cart"].doc == "A cart."
    assert ts["Cart.add"].kind == "method" and ts["Cart.add"].doc == "Adds."
    assert ts["total"].kind == "function"  # an arrow function bound to a const
    assert ts["Priced.price"].kind == "method"
    imports = {
        (i.source, i.name, i.local_name) for i in entry("src/cart.ts", samples.TYPESCRIPT).imports
    }
    assert imports == {
        ("./model/item", "Item", "Item"),
        ("./model/item", "Order", "O"),
        ("../util", "", "util"),
        ("./def", "default", "Default"),
    }
    js = entry("src/cart.js", samples.JAVASCRIPT)
    assert {s.qualified_name for s in js.symbols} >= {"Cart", "Cart.add", "checkout", "fs"}
    assert {(i.source, i.local_name) for i in js.imports} == {("./model.js", "Item"), ("fs", "fs")}


def test_tsx_uses_the_typescript_queries_with_its_own_grammar() -> None:
    text = "export function Button(props: Props) { return <b>{props.label}</b>; }\n"
    assert ("function", "Button", "") in outline("ui/button.tsx", text)


def test_chunks_cover_the_file_at_definition_boundaries() -> None:
    functions = "\n".join(
        f"def f{n}(x):\n" + "".join(f"    x += {k}\n" for k in range(8)) + "    return x\n"
        for n in range(10)
    )
    chunks = entry("many.py", functions).chunks
    lines = functions.count("\n") + 1
    assert chunks[0].start_line == 0 and chunks[-1].end_line == lines - 1
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start_line == before.end_line + 1
    for chunk in chunks:
        assert chunk.end_line - chunk.start_line < CHUNK_MAX_LINES
        # Every chunk starts where a function starts, or on the blank line between two.
        assert chunk.start_line % 11 in (0, 10)


def test_a_long_function_is_cut_into_windows() -> None:
    body = "".join(f"    x{k} = {k}\n" for k in range(100))
    chunks = entry("long.py", f"def f():\n{body}").chunks
    assert all(c.end_line - c.start_line < CHUNK_MAX_LINES for c in chunks)
    assert chunks[-1].end_line == 101


def test_broken_code_still_yields_what_parses() -> None:
    text = "class Good:\n    def ok(self): pass\n\ndef broken(:\n    x = \n"
    names = {s.qualified_name for s in entry("m.py", text).symbols}
    assert {"m.Good", "m.Good.ok"} <= names
