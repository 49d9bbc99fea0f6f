"""Repository context: retrieval from a real index of real files, rendering with the real
model's tokenizer and manifest, and the prompt and pipeline that use it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from completion.context import (
    LAYER_IMPORTED,
    LAYER_MEMBERS,
    LAYER_NEARBY,
    LAYER_SIMILAR,
    ContextRenderer,
    ContextRetriever,
    _inferred_types,
    _names,
)
from completion.pipeline import CompletionPipeline
from completion.prompt import PromptBudget, build_prompt
from completion.request import CompletionRequest, ContextSnippet, Position
from completion.secrets import SecretFilter
from indexer.index import IndexOptions, WorkspaceIndex
from indexer.languages import IDENTIFIER, language_for_id, load
from onnx_models.manifest import ModelManifest

WAIT_S = 20.0
CURSOR = "<|>"

MODEL_PY = '''"""The shop's model."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """An item for sale."""

    sku: str
    price_cents: int


class Cart:
    """A shopping cart."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def add(self, item: Item, quantity: int = 1) -> None:
        self.items.extend([item] * quantity)

    def total_cents(self) -> int:
        return sum(item.price_cents for item in self.items)


def make_cart(*items: Item) -> Cart:
    cart = Cart()
    for item in items:
        cart.add(item)
    return cart
'''

MONEY_PY = (
    '''def format_cents(cents: int) -> str:
    """Cents as euros, with two decimals."""
    return f"{cents / 100:.2f} EUR"


'''
    + f'API_KEY = "{"AKIA" + "Z7QHR4LMXK2PWN5B"}"\n'
)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def request_at(root: Path, relative: str, text_with_cursor: str, language_id: str = ""):
    """Write the file with the cursor marker removed; the request sits at the marker."""
    before, after = text_with_cursor.split(CURSOR)
    write(root, relative, before + after)
    lines = before.split("\n")
    return CompletionRequest(
        before + after,
        Position(len(lines) - 1, len(lines[-1])),
        path=relative,
        language_id=language_id,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, WorkspaceIndex]]:
    root = tmp_path / "shop_project"
    write(root, "shop/__init__.py", "")
    write(root, "shop/model.py", MODEL_PY)
    write(root, "shop/money.py", MONEY_PY)
    index = WorkspaceIndex(
        root, IndexOptions(store_folder=tmp_path / "stores", document_debounce_ms=0)
    )
    index.start()
    assert index.wait_ready(WAIT_S)
    yield root, index
    index.stop()


def index_file(index: WorkspaceIndex, root: Path, relative: str) -> None:
    """Wait until the file (written after the first pass) is in the index."""
    index.document_changed(root / relative, (root / relative).read_text())
    assert index.reader is not None
    assert index.wait_for(lambda: index.reader.file(relative) is not None, WAIT_S)


def by_layer(snippets) -> dict[int, list[ContextSnippet]]:
    layers: dict[int, list[ContextSnippet]] = {}
    for snippet in snippets:
        layers.setdefault(snippet.layer, []).append(snippet)
    return layers


def test_members_of_an_inferred_class_at_a_dot(workspace) -> None:
    root, index = workspace
    request = request_at(
        root,
        "shop/checkout.py",
        "from .model import Item, make_cart\n\n\ndef checkout(skus):\n"
        f"    cart = make_cart(*[Item(s, 100) for s in skus])\n    cart.{CURSOR}\n",
    )
    index_file(index, root, "shop/checkout.py")
    snippets = ContextRetriever(index).retrieve(request)
    best = snippets[0]
    # `cart` comes from make_cart(), whose signature says it returns a Cart.
    assert (best.path, best.layer) == ("shop/model.py", LAYER_MEMBERS)
    assert best.text == (
        "# A shopping cart.\n"
        "class Cart:\n"
        "    def __init__(self) -> None: ...\n"
        "    def add(self, item: Item, quantity: int = 1) -> None: ...\n"
        "    def total_cents(self) -> int: ..."
    )
    nearby = [s.text for s in by_layer(snippets)[LAYER_NEARBY]]
    assert "def make_cart(*items: Item) -> Cart: ..." in nearby
    assert any(text.startswith("# An item for sale.\nclass Item:") for text in nearby)
    assert all(s.path != "shop/checkout.py" for s in snippets)  # never the file itself


def test_imported_names_a_module_alias_and_names_defined_here(workspace) -> None:
    root, index = workspace
    request = request_at(
        root,
        "shop/report.py",
        "from . import money\nfrom .model import Cart\n\n\ndef Item():\n    pass\n\n\n"
        f"def report(cart):\n    Item()\n    return money.{CURSOR}\n",
    )
    index_file(index, root, "shop/report.py")
    snippets = ContextRetriever(index).retrieve(request)
    layers = by_layer(snippets)
    # `money.` lists the module's public names.
    [listing] = layers[LAYER_MEMBERS]
    assert listing.path == "shop/money.py"
    assert "def format_cents(cents: int) -> str:" in listing.text
    # Cart is imported but not used near the cursor: shown in the stable layer.
    [imported] = layers[LAYER_IMPORTED]
    assert imported.text.startswith("# A shopping cart.\nclass Cart:")
    # Item is defined in this file: the model sees it there, not in the context.
    assert not any("class Item" in s.text for s in snippets)


def test_similar_chunks_come_from_recently_opened_files(workspace) -> None:
    root, index = workspace
    index.document_changed(root / "shop" / "model.py", MODEL_PY)
    request = request_at(
        root,
        "shop/basket.py",
        "def basket_total(basket):\n    total = 0\n    for item in basket.items:\n"
        f"        total += item.price_cents\n    {CURSOR}\n",
    )
    index_file(index, root, "shop/basket.py")
    snippets = ContextRetriever(index).retrieve(request)
    similar = by_layer(snippets)[LAYER_SIMILAR]
    assert similar and all(s.path == "shop/model.py" for s in similar)
    assert any("sum(item.price_cents for item in self.items)" in s.text for s in similar)


def test_nothing_without_an_index_or_for_files_outside_it(workspace, tmp_path: Path) -> None:
    root, index = workspace
    request = CompletionRequest("x = 1\n", Position(1, 0), path="", language_id="python")
    assert ContextRetriever(index).retrieve(request) == ()
    fresh = WorkspaceIndex(root, IndexOptions(store_folder=tmp_path / "other"))
    assert ContextRetriever(fresh).retrieve(dataclasses.replace(request, path="a.py")) == ()


def test_a_class_outline_follows_edits_of_its_file(workspace) -> None:
    # Outlines are kept per version of their file: an edit of the file shows in the next one.
    root, index = workspace
    request = request_at(
        root,
        "shop/checkout.py",
        f"from .model import Cart\n\n\ndef checkout(cart: Cart):\n    cart.{CURSOR}\n",
    )
    index_file(index, root, "shop/checkout.py")
    retriever = ContextRetriever(index)
    [members] = by_layer(retriever.retrieve(request))[LAYER_MEMBERS]
    assert members.text.startswith("# A shopping cart.\nclass Cart:")
    assert "def empty" not in members.text
    edited = MODEL_PY.replace(
        "    def total_cents",
        "    def empty(self) -> None:\n        self.items.clear()\n\n    def total_cents",
    )
    index.document_changed(root / "shop" / "model.py", edited)
    assert index.reader is not None
    assert index.wait_for(lambda: index.reader.symbols_named(["empty"]) != [], WAIT_S)
    [members] = by_layer(retriever.retrieve(request))[LAYER_MEMBERS]
    assert "    def empty(self) -> None: ..." in members.text


# What `_inferred_types` finds, written plainly: each pattern run over the text by finditer.
# It searches the name's occurrences instead (the same matches, without a compilation per
# name or a scan that tries every position).
def plain_inferred_types(receiver: str, prefix: str, keywords: frozenset[str]) -> list[str]:
    name = re.escape(receiver)
    patterns = (
        rf"\b{name}\s*:\s*&?(?:mut\s+)?([A-Za-z_][\w.]*)",
        rf"\b{name}\s*:?=\s*(?:new\s+|&)?([A-Za-z_][\w.]*)\s*[({{]",
        rf"\b([A-Za-z_]\w*)(?:<[^<>]*>)?(?:\s*[*&]+\s*|\s+){name}\s*[=;,)]",
        rf"\b{name}\s+\*?([A-Z]\w*)",
    )
    recent = prefix[-16_000:]
    found = [
        (match.start(), match.group(1).rpartition(".")[2])
        for pattern in patterns
        for match in re.finditer(pattern, recent)
    ]
    names = [name for _, name in sorted(found, reverse=True) if name not in keywords]
    return list(dict.fromkeys(names))[:3]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("python", MODEL_PY + "\ncart = make_cart()\nitems: list[Item] = cart.items\ncart."),
        ("cpp", "std::map<K, V> *cart = make();\nFoo<A<B>> x;\nCart& cart, Cart**cart;\n"),
        ("c", "a>Cart cart;\nstruct cart *cart = NULL;\nint f(cart_t cart) { cart = 0; }\n"),
        ("go", "func f(cart *Cart) {\n\tvar other Cart\n\tcart := &Cart{}\n\tmycart := x\n"),
        ("typescript", "const cart: Cart.Inner = new Cart();\nlet cart2 = cart;\n_cart = 1;\n"),
        ("rust", "let cart: &mut Cart = Cart::new();\nfn fill(c: &mut Cart) { c }\n"),
    ],
)
def test_types_inferred_for_a_variable_are_those_the_plain_patterns_find(
    language: str, text: str
) -> None:
    row = language_for_id(language)
    assert row is not None
    keywords = load(row).keywords
    receivers = set(IDENTIFIER.findall(text))
    for end in range(0, len(text) + 1, 7):
        for receiver in receivers:
            assert _inferred_types(receiver, text[:end], row) == plain_inferred_types(
                receiver, text[:end], keywords
            ), (receiver, text[:end])


@pytest.mark.parametrize(
    ("files", "relative", "text", "expected_path", "expected_head"),
    [
        (
            {
                "go.mod": "module example.com/shop\n",
                "internal/model/cart.go": "package model\n\n// Cart holds items.\n"
                "type Cart struct {\n\tItems []string\n}\n\n"
                "func (c *Cart) Add(sku string) { c.Items = append(c.Items, sku) }\n",
                "internal/model/new.go": "package model\n\n"
                "func NewCart() *Cart { return &Cart{} }\n",
            },
            "cmd/app/main.go",
            'package main\n\nimport "example.com/shop/internal/model"\n\nfunc main() {\n'
            f"\tcart := model.NewCart()\n\tcart.{CURSOR}\n}}\n",
            "internal/model/cart.go",
            "// Cart holds items.\ntype Cart struct {\n    Items []string\n}\n"
            "func (c *Cart) Add(sku string)",
        ),
        (
            {
                "src/cart.ts": "/** A cart. */\nexport class Cart {\n  items: string[] = [];\n"
                "  add(sku: string): void { this.items.push(sku); }\n}\n",
            },
            "src/app.ts",
            f'import {{ Cart }} from "./cart";\n\nconst cart = new Cart();\ncart.{CURSOR}\n',
            "src/cart.ts",
            "// A cart.\nexport class Cart {\n    items: string[] = []\n"
            "    add(sku: string): void\n}",
        ),
        (
            {
                "src/main/java/com/acme/Item.java": "package com.acme;\n\n"
                "public class Item {\n    public int price() { return 1; }\n}\n",
            },
            "src/main/java/com/acme/app/App.java",
            "package com.acme.app;\n\nimport com.acme.Item;\n\nclass App {\n"
            f"    int total(Item item) {{\n        return item.{CURSOR}\n    }}\n}}\n",
            "src/main/java/com/acme/Item.java",
            "public class Item {\n    public int price()\n}",
        ),
        (
            {
                "include/cart.h": "/* A cart. */\ntypedef struct cart {\n  int count;\n"
                "  const char *owner;\n} cart_t;\n",
            },
            "src/main.c",
            f'#include "cart.h"\n\nint count(cart_t *c) {{\n  return c->{CURSOR}\n}}\n',
            "include/cart.h",
            "// A cart.\ntypedef struct cart {\n    int count;\n    const char *owner;\n}",
        ),
        (
            {
                "src/model.rs": "/// A cart.\npub struct Cart {\n    pub items: Vec<String>,\n}\n\n"
                "impl Cart {\n    pub fn add(&mut self, sku: &str) {}\n}\n",
            },
            "src/main.rs",
            f"use crate::model::Cart;\n\nfn fill(c: &mut Cart) {{\n    c.{CURSOR}\n}}\n",
            "src/model.rs",
            "// A cart.\npub struct Cart {\n    pub items: Vec<String>\n}\npub fn add(&mut self, "
            "sku: &str)",
        ),
    ],
    ids=["go", "typescript", "java", "c", "rust"],
)
def test_members_across_languages(
    tmp_path: Path, files, relative, text, expected_path, expected_head
) -> None:
    root = tmp_path / "project"
    for path, content in files.items():
        write(root, path, content)
    request = request_at(root, relative, text)
    index = WorkspaceIndex(root, IndexOptions(store_folder=tmp_path / "stores"))
    index.start()
    try:
        assert index.wait_ready(WAIT_S)
        snippets = ContextRetriever(index).retrieve(request)
    finally:
        index.stop()
    members = by_layer(snippets).get(LAYER_MEMBERS, [])
    assert members, snippets
    assert members[0].path == expected_path
    assert members[0].text.startswith(expected_head), members[0].text


# -- rendering -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(model_dir: Path) -> ContextRenderer:
    manifest = ModelManifest.load(model_dir)
    tokenizer = Tokenizer.from_file(str(model_dir / manifest.tokenizer_file))
    return ContextRenderer(tokenizer, manifest)


SNIPPETS = (
    ContextSnippet("shop/model.py", 12, "class Cart:\n    def add(self, item): ...", 10.0, 3),
    ContextSnippet("shop/money.py", 0, "def format_cents(cents: int) -> str: ...", 3.0, 2),
    ContextSnippet("shop/model.py", 0, "class Item:\n    sku: str", 1.0, 0),
    ContextSnippet("shop/tax.py", 0, "RATE = 20\n" * 200, 0.5, 1),
)


def test_rendering_uses_the_models_file_tokens_in_a_stable_order(renderer) -> None:
    text = renderer.render(SNIPPETS, 120, framing="filename", repo_name="shop_project")
    assert text == (
        "<repo_name>shop_project"
        "<filename>shop/model.py\nclass Item:\n    sku: str\n# ...\n"
        "class Cart:\n    def add(self, item): ...\n"
        "<filename>shop/money.py\ndef format_cents(cents: int) -> str: ...\n"
    )  # tax.py does not fit the budget
    assert renderer.count(text) <= 120
    # Scores decide what fits, not where it goes: the same snippets, rescored, render alike.
    rescored = [dataclasses.replace(s, score=-s.score) for s in reversed(SNIPPETS)]
    assert renderer.render(rescored, 120, framing="filename", repo_name="shop_project") == text


def test_without_file_tokens_paths_go_in_comments(renderer) -> None:
    text = renderer.render(SNIPPETS[1:2], 100, framing="none", current_path="shop/checkout.py")
    assert text == (
        "# shop/money.py\ndef format_cents(cents: int) -> str: ...\n\n# shop/checkout.py\n"
    )


def test_lines_the_secret_filter_flags_never_reach_the_prompt(renderer) -> None:
    secrets = SecretFilter()
    snippet = ContextSnippet("shop/money.py", 0, MONEY_PY, 1.0, 1)
    text = renderer.render(
        [snippet], 200, hidden_line=lambda line: secrets.mask(line) != line, framing="filename"
    )
    assert "format_cents" in text
    assert "AKIA" not in text and "API_KEY" not in text


def test_the_prompt_puts_context_first_within_the_same_budget(renderer) -> None:
    prefix = "".join(f"value_{n} = {n}\n" for n in range(400))
    budget = PromptBudget(prefix_tokens=600, context_tokens=200)
    args = dict(prefix=prefix, suffix="", line_prefix="", path="a.py", budget=budget)
    alone = build_prompt(renderer.tokenizer, renderer.manifest, **args)
    context = "<filename>b.py\n" + "".join(f"def helper_{n}(): ...\n" for n in range(20))
    both = build_prompt(renderer.tokenizer, renderer.manifest, repo_context=context, **args)
    assert both.text.startswith(context + "<filename>a.py\n")
    # The context's share comes out of the prefix: the total stays within the budget.
    assert both.prefix_chars_dropped > alone.prefix_chars_dropped
    assert renderer.count(both.text) <= 600 + 8
    # A small context leaves the rest of its share to the prefix.
    small = build_prompt(
        renderer.tokenizer, renderer.manifest, repo_context="<filename>b.py\n", **args
    )
    assert small.prefix_chars_dropped <= alone.prefix_chars_dropped + len("value_399 = 399\n") * 16


# -- what a cursor move keeps ------------------------------------------------------------


def shown_at(renderer, snippets, budget: int = 120, path: str = "shop/checkout.py") -> str:
    return renderer.render(
        snippets, budget, framing="filename", repo_name="shop_project", current_path=path
    )


def relayered(layers: dict[str, int]) -> list[ContextSnippet]:
    return [dataclasses.replace(s, layer=layers.get(s.path, s.layer)) for s in SNIPPETS]


def test_a_cursor_move_that_reorders_the_context_keeps_it_as_it_was(renderer) -> None:
    """At the next position other names are used near the cursor: the same snippets come
    back in other layers. The prompt's start, and with it the KV cache, stays."""
    renderer.forget()
    before = shown_at(renderer, SNIPPETS)
    moved = relayered({"shop/model.py": LAYER_NEARBY, "shop/money.py": LAYER_IMPORTED})
    assert shown_at(renderer, moved) == before
    # Laid out afresh, money.py would now come first.
    renderer.forget()
    assert shown_at(renderer, moved).index("shop/money.py") < before.index("shop/money.py")
    # The memory is per document: another file's first render is laid out afresh.
    renderer.forget()
    shown_at(renderer, SNIPPETS)
    assert shown_at(renderer, moved, path="shop/other.py") != before


def test_a_new_snippet_goes_after_the_ones_already_shown(renderer) -> None:
    renderer.forget()
    before = shown_at(renderer, SNIPPETS, budget=200)
    new = ContextSnippet("shop/basket.py", 0, "def basket_total(cart) -> int: ...", 20.0, 0)
    after = shown_at(renderer, [new, *SNIPPETS], budget=200)
    assert after.startswith(before) and "basket_total" in after[len(before) :]
    assert renderer.count(after) <= 200
    # Laid out afresh, basket.py (most stable layer, first path) would go first.
    renderer.forget()
    assert shown_at(renderer, [new, *SNIPPETS], budget=200).startswith(
        "<repo_name>shop_project<filename>shop/basket.py"
    )


def test_snippets_shown_before_are_held_while_the_retriever_still_offers_them(
    renderer,
) -> None:
    body = "def basket_total(cart) -> int:\n" + "    total = 0  # one step\n" * 6
    new = ContextSnippet("shop/basket.py", 0, body + "    return total", 20.0, 0)
    holding = ContextRenderer(renderer.tokenizer, renderer.manifest)
    before = shown_at(holding, SNIPPETS)
    # The budget is full: the new snippet, though it scores best, waits.
    assert shown_at(holding, [new, *SNIPPETS]) == before
    # Without holding it takes the place of what scores less.
    fresh = ContextRenderer(renderer.tokenizer, renderer.manifest, hold=False)
    shown_at(fresh, SNIPPETS)
    assert "basket_total" in shown_at(fresh, [new, *SNIPPETS])
    # A snippet no longer offered (its file changed, or it is no longer relevant) goes, and
    # what is freed goes to the new one.
    gone = [s for s in SNIPPETS if s.text.startswith("class Item")]
    after = shown_at(holding, [new, *gone])
    assert "class Cart" not in after and "format_cents" not in after
    assert "class Item" in after and "basket_total" in after


def test_the_pipeline_shows_the_model_the_context(model_dir: Path, workspace) -> None:
    root, index = workspace
    request = request_at(
        root,
        "shop/checkout.py",
        "from .model import Item, make_cart\n\n\ndef checkout(skus):\n"
        f"    cart = make_cart(*[Item(s, 100) for s in skus])\n    cart.{CURSOR}\n",
        language_id="python",
    )
    index_file(index, root, "shop/checkout.py")
    context = ContextRetriever(index).retrieve(request)
    pipeline = CompletionPipeline.load(model_dir)
    without = pipeline.complete(request)
    with_context = pipeline.complete(dataclasses.replace(request, context=context))
    rendered = pipeline.context_renderer.render(context, PromptBudget().context_tokens)
    assert with_context.stats.prompt_tokens >= without.stats.prompt_tokens + (
        pipeline.context_renderer.count(rendered) - 4
    )
    # The file's own part of the prompt is unchanged, so its cache survives: only the
    # context in front of it was new.
    assert with_context.insert_text.startswith(("add", "total_cents", "items"))


def test_names_near_the_cursor_come_in_source_order() -> None:
    """Snippets of equal score keep their order from one keystroke to the next only if the
    names are read in a fixed order (tree-sitter's capture order varies between calls)."""
    loaded = load(language_for_id("python"))
    text = "".join(f"value_{i} = helper_{i}(item.field_{i}, other_{i})\n" for i in range(40))
    runs = [list(_names(loaded, text)) for _ in range(20)]
    assert all(run == runs[0] for run in runs)
    plain = [(name, row) for name, row, qualifier in runs[0] if not qualifier]
    assert [row for _, row in plain] == sorted(row for _, row in plain)
    assert plain[:4] == [("value_0", 0), ("helper_0", 0), ("item", 0), ("other_0", 0)]


CHECKOUT_PY = (
    "from .model import Item, make_cart\nfrom .money import format_cents\n\n\n"
    "def checkout(skus):\n    cart = make_cart(*[Item(s, 100) for s in skus])\n    return cart\n"
    + "".join(f"\n\ndef step_{n}(value):\n    return value + {n}\n" for n in range(12))
    + "\n\ndef receipt(cart):\n    total = cart.total_cents()\n    return format_cents(total)\n"
)


def test_a_cursor_move_in_the_file_reuses_the_cached_context(model_dir: Path, workspace) -> None:
    """From the line that uses `make_cart` to the one that uses `format_cents`: the names
    used near the cursor change, the retrieved snippets change layers, and the context,
    first in the prompt, still comes from the KV cache."""
    root, index = workspace
    write(root, "shop/checkout.py", CHECKOUT_PY)
    index_file(index, root, "shop/checkout.py")
    lines = CHECKOUT_PY.split("\n")
    first, second = (
        next(number for number, line in enumerate(lines) if name in line)
        for name in ("make_cart(*", "format_cents(total)")
    )
    at_first = CompletionRequest(
        CHECKOUT_PY,
        Position(first, len(lines[first])),
        path="shop/checkout.py",
        language_id="python",
        repo_name="shop_project",
    )
    at_second = dataclasses.replace(at_first, position=Position(second, len(lines[second])))
    retriever = ContextRetriever(index)
    before, after = retriever.retrieve(at_first), retriever.retrieve(at_second)
    assert {s.text: s.layer for s in before} != {s.text: s.layer for s in after}
    pipeline = CompletionPipeline.load(model_dir)

    def reused_after_the_move(remembered: bool) -> tuple[int, int]:
        pipeline.engine.rewind(0)
        pipeline.context_renderer.forget()
        pipeline.complete(dataclasses.replace(at_first, context=before))
        context = pipeline.context_renderer.count(
            pipeline.context_renderer.render(
                before,
                PromptBudget().context_tokens,
                repo_name="shop_project",
                current_path="shop/checkout.py",
            )
        )
        if not remembered:
            pipeline.context_renderer.forget()
        moved = pipeline.complete(dataclasses.replace(at_second, context=after))
        return moved.stats.reused_tokens, context

    reused, context = reused_after_the_move(remembered=True)
    assert context > 20 and reused >= context
    # Laid out afresh, the context's first file changes, and little of the cache is used.
    fresh, _ = reused_after_the_move(remembered=False)
    assert fresh < context


def test_a_new_snippet_of_a_file_already_shown_gets_a_block_of_its_own(renderer) -> None:
    renderer.forget()
    item, cart = SNIPPETS[2], SNIPPETS[0]
    before = shown_at(renderer, [item, SNIPPETS[1]], budget=90)
    after = shown_at(renderer, [cart, item, SNIPPETS[1]], budget=90)
    # Inserted into model.py's block, Cart would change the text right after Item.
    assert after.startswith(before) and after.count("<filename>shop/model.py") == 2
    assert renderer.count(after) <= 90
    for budget in range(40, 90):  # the second header is paid for, whatever the budget
        renderer.forget()
        shown_at(renderer, [item, SNIPPETS[1]], budget=budget)
        assert (
            renderer.count(shown_at(renderer, [cart, item, SNIPPETS[1]], budget=budget)) <= budget
        )
