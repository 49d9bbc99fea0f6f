"""Which files the bench types into (.gitignore honoured) and where its cursors go."""

from __future__ import annotations

from pathlib import Path

from lsp_server.bench.workspace import (
    sample_positions,
    source_files,
    stopping_points,
    workspace_files,
)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_gitignore_rules_apply_at_every_level_and_git_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "build/\n*.log\n!keep.log\n")
    write(tmp_path, "src/.gitignore", "generated_*.py\n")
    for relative in [
        "src/app.py",
        "src/generated_parser.py",
        "build/out.py",
        "notes.log",
        "keep.log",
        "docs/build.py",  # "build/" names folders, not this file
        ".git/config",
    ]:
        write(tmp_path, relative, "x = 1\n")
    found = {path.relative_to(tmp_path).as_posix() for path in workspace_files(tmp_path)}
    assert found == {".gitignore", "src/.gitignore", "src/app.py", "keep.log", "docs/build.py"}


def test_a_deeper_gitignore_can_take_back_a_parent_rule(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.py\n")
    write(tmp_path, "kept/.gitignore", "!*.py\n")
    write(tmp_path, "gone.py", "x = 1\n")
    write(tmp_path, "kept/here.py", "x = 1\n")
    assert [f.relative for f in source_files(tmp_path)] == ["kept/here.py"]


def test_sources_are_the_files_the_workspace_index_reads(tmp_path: Path) -> None:
    for relative in [
        "a.py",
        "b.rs",
        "README.md",
        "config.toml",
        "run.sh",
        "vendor/lib.py",
        "node_modules/pkg/index.js",
    ]:
        write(tmp_path, relative, "x = 1\n")
    files = source_files(tmp_path)
    assert [(f.relative, f.language_id) for f in files] == [("a.py", "python"), ("b.rs", "rust")]


def test_a_cursor_stops_at_word_ends_after_the_typed_characters() -> None:
    line = "    total = add(a, b)"
    # Four characters typed after the indentation at least; never inside a word.
    assert stopping_points(line, 4) == [9, 10, 11, 15, 17, 18, 20, 21]
    assert stopping_points("x", 2) == []


def python_project(root: Path) -> None:
    for number in range(6):
        body = "\n".join(f"    value_{i} = compute({i}, {number})" for i in range(12))
        write(root, f"pkg/module_{number}.py", f"def run():\n{body}\n    return value_0\n")
    write(root, "tool.js", "// a comment only\nconst answer = compute(42);\n")


def test_sampling_is_seeded_and_spread_over_languages_and_files(tmp_path: Path) -> None:
    python_project(tmp_path)
    files = source_files(tmp_path)
    first = sample_positions(files, 8, 3, seed=5)
    assert first == sample_positions(files, 8, 3, seed=5)
    assert first != sample_positions(files, 8, 3, seed=6)
    assert len(first) == 8
    # Both languages come up at once, and no file has a second position before each has one.
    assert {p.file.language_id for p in first[:2]} == {"python", "javascript"}
    assert len({p.file.relative for p in first[:7]}) == 7


def test_positions_hold_their_typed_characters_and_skip_comment_lines(tmp_path: Path) -> None:
    python_project(tmp_path)
    files = source_files(tmp_path)
    for position in sample_positions(files, 40, 3, seed=1):
        text = position.file.path.read_text()
        line = text.splitlines()[position.line]
        typed = text[position.offset - 3 : position.offset]
        assert line[position.column - 1 - 3 : position.column - 1] == typed
        indent = len(line) - len(line.lstrip())
        assert position.column - 1 - 3 >= indent  # typing starts after the indentation
        assert not line.lstrip().startswith("//")
        after = text[position.offset : position.offset + 1]
        assert not (after.isalnum() or after == "_")
