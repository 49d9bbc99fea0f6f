"""Golden cases per language: a document with a cursor, what a model might write there, and
what the editor must be shown. Mode (tree-sitter), streamed stops, post-processing and the
syntax check run exactly as in the pipeline; only the model output is made up, including the
ways small models go wrong (markdown after the code, re-typing the suffix, running on).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from completion.cursor import split_at
from completion.languages import language_for
from completion.pipeline import finish_suggestion
from completion.request import Position
from completion.stops import StopCriteria
from completion.syntax import SyntaxWindow, cursor_mode


@dataclass(frozen=True)
class Golden:
    name: str
    language: str
    document: str  # "‸" marks the cursor
    model_output: str
    mode: str
    insert: str
    replaced: str = ""  # the text after the cursor the suggestion replaces
    stop: str = ""  # the stop rule that ended it, when one did

    def __str__(self) -> str:
        return f"{self.language}-{self.name}"


CURSOR = "‸"


def run(case: Golden, chunk: int = 3) -> tuple[str, str, str, str]:
    """(mode, insert text, replaced text, stop reason) for a case, the output streamed into
    the stop rules `chunk` characters at a time like decoded tokens."""
    offset = case.document.index(CURSOR)
    text = case.document.replace(CURSOR, "", 1)
    line = text.count("\n", 0, offset)
    ctx = split_at(text, Position(line, offset - (text.rfind("\n", 0, offset) + 1)))
    language = language_for(case.language)
    window = SyntaxWindow.around(ctx)
    cursor = cursor_mode(language, ctx, window=window)
    if cursor.mode == "none":
        return "none", "", "", ""
    stops = StopCriteria(cursor.mode, ctx.line_prefix, language=language)
    decision = None
    for start in range(0, len(case.model_output), chunk):
        decision = stops.feed(case.model_output[start : start + chunk])
        if decision.stop:
            break
    if decision is None or not decision.stop:
        decision = stops.finish()  # as if the model ended with its end-of-text token
    kept = stops.text[: decision.keep_chars]
    suggestion = finish_suggestion(kept, ctx, cursor, language, window)
    replaced = ctx.line_suffix[: suggestion.replace_chars]
    return cursor.mode, suggestion.text, replaced, decision.reason


CASES = [
    # -- Python: blocks end by indentation --------------------------------------------------
    Golden(
        "empty-body",
        "python",
        "def area(r):\n    ‸\n\n\ndef other():\n    pass\n",
        "return 3.14159 * r * r\n\n\ndef other():\n    pass\n",
        "block",
        "return 3.14159 * r * r",
        stop="dedent",
    ),
    Golden(
        "after-colon",
        "python",
        "def sign(x):‸",
        "\n    if x < 0:\n        return -1\n    return 1\n\nprint(sign(3))\n",
        "block",
        "\n    if x < 0:\n        return -1\n    return 1",
        stop="dedent",
    ),
    Golden(
        "auto-closed-call",
        "python",
        "for i in range(10):\n    print(fibonacci(‸))\n",
        "i))\nprint('done')\n",
        "line",
        "i",
        stop="newline",
    ),
    Golden(
        "trims-retyped-closers",
        "python",
        "total = max(len(‸))\n",
        "a), len(b))\n",
        "line",
        "a), len(b",
        stop="newline",
    ),
    Golden(
        "takes-over-closers",
        "python",
        "total = max(len(‸))\n",
        "a), len(b)) + 1\n",
        "line",
        "a), len(b)) + 1",
        replaced="))",
        stop="newline",
    ),
    Golden(
        "keeps-its-own-closer",
        "python",
        "print(‸)\n",
        "len(items)\n",
        "line",
        "len(items)",
        stop="newline",
    ),
    Golden(
        "dict-value-is-not-a-block",
        "python",
        "config = {'retries':‸",
        " 3, 'timeout': 10}\n",
        "line",
        " 3, 'timeout': 10}",
        stop="newline",
    ),
    Golden(
        "markdown-drift",
        "python",
        "def parse(s):\n    ‸",
        "return int(s)\n```\n\nThis function parses an integer.\n",
        "block",
        "return int(s)",
        stop="fence",
    ),
    Golden(
        "retyped-next-line",
        "python",
        "def double(x):\n    ‸\n    return y\n",
        "y = x * 2\n    return y\n",
        "block",
        "y = x * 2",
        stop="end",
    ),
    Golden(
        "repeats-previous-line",
        "python",
        "values = load_values(path)\n‸",
        "values = load_values(path)\n",
        "block",
        "",
        stop="end",
    ),
    Golden(
        "syntax-cut",
        "python",
        "value = compute(‸)\n",
        "a, b)) + 1\n",
        "line",
        "a, b",
        stop="newline",
    ),
    Golden("mid-word", "python", "resu‸lt = 1\n", "lt = 2\n", "none", ""),
    Golden(
        "inside-string",
        "python",
        'print("Hello, ‸")\n',
        'world!")\n',
        "line",
        "world!",
        stop="newline",
    ),
    # -- JavaScript / TypeScript: the bracket that balances the block ends it -------------
    Golden(
        "empty-braces",
        "javascript",
        "function add(a, b) {‸}\n",
        "\n  return a + b;\n}\n\nfunction sub(a, b) {\n",
        "block",
        "\n  return a + b;\n}",
        replaced="}",
        stop="close",
    ),
    Golden(
        "blank-line-in-block",
        "javascript",
        "if (ready) {\n  ‸\n}\n",
        "start();\n}\nstop();\n",
        "block",
        "start();",
        stop="close_outer",
    ),
    Golden(
        "callback-closes-with-paren",
        "javascript",
        "items.forEach((item) => {‸",
        "\n  console.log(item);\n});\nconsole.log('done');\n",
        "block",
        "\n  console.log(item);\n});",
        stop="close",
    ),
    Golden(
        "else-continues",
        "javascript",
        "if (a) {‸",
        "\n  run();\n} else {\n  skip();\n}\nnext();\n",
        "block",
        "\n  run();\n} else {\n  skip();\n}",
        stop="close",
    ),
    Golden(
        "auto-closed-paren-and-semicolon",
        "javascript",
        "const total = items.reduce((a, b) => a + b, ‸);\n",
        "0);\n",
        "line",
        "0",
        stop="newline",
    ),
    Golden(
        "template-literal",
        "typescript",
        "function greet(name: string): string {‸",
        "\n  return `Hello, ${name} {`;\n}\n\ngreet('x');\n",
        "block",
        "\n  return `Hello, ${name} {`;\n}",
        stop="close",
    ),
    Golden(
        "tsx-line",
        "typescriptreact",
        "const el = <div className=‸",
        '"box">{children}</div>;\nexport default el;\n',
        "line",
        '"box">{children}</div>;',
        stop="newline",
    ),
    # -- Go: case labels sit at the switch's indentation -----------------------------------
    Golden(
        "switch-cases",
        "go",
        "func name(x int) string {\n\tswitch x {‸",
        '\n\tcase 1:\n\t\treturn "one"\n\tdefault:\n\t\treturn "many"\n\t}\n\treturn ""\n}\n',
        "block",
        '\n\tcase 1:\n\t\treturn "one"\n\tdefault:\n\t\treturn "many"\n\t}',
        stop="close",
    ),
    Golden(
        "go-blank-line",
        "go",
        "func main() {\n\t‸\n}\n",
        'fmt.Println("hi")\n}\n',
        "block",
        'fmt.Println("hi")',
        stop="close_outer",
    ),
    # -- Rust: lifetimes and char literals are not quotes or brackets ----------------------
    Golden(
        "lifetimes",
        "rust",
        "fn longest<'a>(x: &'a str, y: &'a str) -> &'a str {‸",
        "\n    if x.len() > y.len() { x } else { y }\n}\n\nfn main() {}\n",
        "block",
        "\n    if x.len() > y.len() { x } else { y }\n}",
        stop="close",
    ),
    Golden(
        "char-literal-brace",
        "rust",
        "fn is_open(c: char) -> bool {‸",
        "\n    c == '{' || c == '('\n}\nfn other() {}\n",
        "block",
        "\n    c == '{' || c == '('\n}",
        stop="close",
    ),
    # -- Java --------------------------------------------------------------------------------
    Golden(
        "method-body",
        "java",
        "class Stack {\n    int size() {‸}\n}\n",
        "\n        return items.size();\n    }\n\n    void clear() {\n",
        "block",
        "\n        return items.size();\n    }",
        replaced="}",
        stop="close",
    ),
    Golden(
        "string-with-braces",
        "java",
        "class A {\n    String f() {‸",
        '\n        return "{}".repeat(2);\n    }\n}\n',
        "block",
        '\n        return "{}".repeat(2);\n    }',
        stop="close",
    ),
    # -- C -------------------------------------------------------------------------------------
    Golden(
        "main-body",
        "c",
        "int main(void) {\n    ‸\n}\n",
        'printf("%d\\n", 42);\n    return 0;\n}\n',
        "block",
        'printf("%d\\n", 42);\n    return 0;',
        stop="close_outer",
    ),
    Golden(
        "comment-brace",
        "c",
        "void f(void) {‸",
        "\n    /* { not a block */\n    g();\n}\nint x;\n",
        "block",
        "\n    /* { not a block */\n    g();\n}",
        stop="close",
    ),
    Golden(
        "in-string-closes-quote",
        "c",
        'void f(void) { printf("‸"); }\n',
        'done\\n");\n',
        "line",
        "done\\n",
        stop="newline",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_golden(case: Golden) -> None:
    mode, insert, replaced, stop = run(case)
    assert (mode, insert, replaced) == (case.mode, case.insert, case.replaced)
    if case.stop:
        assert stop == case.stop


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_golden_does_not_depend_on_token_boundaries(chunk: int) -> None:
    for case in CASES:
        assert run(case, chunk)[:3] == run(case)[:3], case


def test_every_language_has_cases() -> None:
    assert {language_for(case.language).name for case in CASES} == {  # type: ignore[union-attr]
        "python",
        "javascript",
        "typescript",
        "tsx",
        "go",
        "rust",
        "java",
        "c",
    }
