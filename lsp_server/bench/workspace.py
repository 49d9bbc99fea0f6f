"""Which files of a workspace the bench types into, and where the cursor goes.

Files are the workspace's source files (by suffix) that git would track: `.gitignore` files are
honoured at every level, `.git/` is skipped. Positions are sampled with a seeded generator
from a sorted file list, so the same seed on the same tree gives the same positions, and they
rotate over languages first and files second, so a repository mostly in one language still
gets its other languages measured. This module reads files; it never talks to the server.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import pathspec

from lsp_server.documents import (
    LANGUAGE_BY_SUFFIX,
    UTF16,
    UnusableText,
    lsp_lines,
    position_at,
    read_source_file,
)

# Languages the bench types into: code, not prose or configuration.
NOT_SOURCE = frozenset({"markdown", "json", "toml", "yaml"})
# Lines that are only a comment: a completion model is not asked to finish those in a bench.
COMMENT_STARTS: dict[str, tuple[str, ...]] = {
    "python": ("#",),
    "shellscript": ("#",),
    "ruby": ("#",),
    "lua": ("--",),
}
C_LIKE_COMMENTS = ("//", "/*", "*")
# Bigger files are generated or vendored more often than written by hand.
MAX_SOURCE_BYTES = 512 * 1024


class NoSourceFiles(Exception):
    """The workspace has no source file the bench can use."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    relative: str  # POSIX path relative to the workspace, as reports name it
    language_id: str


@dataclass(frozen=True)
class CursorPosition:
    """A cursor in a file, with the `keystrokes` characters before it to be typed."""

    file: SourceFile
    offset: int  # string offset of the cursor in the file's text
    line: int  # zero-based, as LSP counts
    character: int  # UTF-16 code units, as LSP counts
    column: int  # one-based, in characters: as an editor shows it and `nexttoken complete` takes
    keystrokes: int

    @property
    def label(self) -> str:
        return f"{self.file.relative}:{self.line + 1}:{self.column}"


class _GitIgnores:
    """The ignore rules in force in one directory: its own `.gitignore` and its parents'."""

    def __init__(self, rules: tuple[tuple[Path, pathspec.PathSpec], ...] = ()) -> None:
        self._rules = rules  # (directory, spec), outermost first

    def adding(self, directory: Path, rules_file: Path) -> _GitIgnores:
        try:
            lines = rules_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return self
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        return _GitIgnores((*self._rules, (directory, spec)))

    def entering(self, directory: Path) -> _GitIgnores:
        return self.adding(directory, directory / ".gitignore")

    def ignores(self, path: Path, is_dir: bool) -> bool:
        # The innermost file with a matching rule decides, as in git.
        for directory, spec in reversed(self._rules):
            relative = path.relative_to(directory).as_posix() + ("/" if is_dir else "")
            decision = spec.check_file(relative).include
            if decision is not None:
                return decision
        return False


def workspace_files(root: Path) -> Iterator[Path]:
    """Every file under `root` that git would not ignore, in sorted order."""
    root = root.resolve()
    # .git/info/exclude ranks below the root's .gitignore, so it goes first.
    ignores = _GitIgnores().adding(root, root / ".git" / "info" / "exclude").entering(root)
    yield from _walk(root, ignores)


def _walk(directory: Path, ignores: _GitIgnores) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        # Links are skipped: they lead out of the workspace or to a file listed anyway.
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name == ".git" or ignores.ignores(path, is_dir=True):
                continue
            yield from _walk(path, ignores.entering(path))
        elif entry.is_file() and not ignores.ignores(path, is_dir=False):
            yield path


def source_files(root: Path) -> list[SourceFile]:
    """The workspace's source files in a language the server knows, sorted by path."""
    root = root.resolve()
    found = []
    for path in workspace_files(root):
        language_id = LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), "")
        if not language_id or language_id in NOT_SOURCE:
            continue
        try:
            if path.stat().st_size > MAX_SOURCE_BYTES:
                continue
        except OSError:
            continue
        found.append(SourceFile(path, path.relative_to(root).as_posix(), language_id))
    return found


def read_text(file: SourceFile) -> str | None:
    """The file's text, None when it is not UTF-8 text."""
    try:
        return read_source_file(file.path)
    except UnusableText:
        return None


def is_comment_line(line: str, language_id: str) -> bool:
    starts = COMMENT_STARTS.get(language_id, C_LIKE_COMMENTS)
    return line.lstrip().startswith(starts)


def cursor_candidates(text: str, language_id: str, keystrokes: int) -> list[tuple[int, int, str]]:
    """(line number, line start offset, line) for the lines where `keystrokes` characters can
    be typed: not blank, not only a comment, with that many characters after the indentation."""
    found = []
    offset = 0
    for number, line in enumerate(lsp_lines(text)):
        body = line.rstrip("\r\n")
        typable = len(body.lstrip())
        if typable and typable >= keystrokes and not is_comment_line(body, language_id):
            found.append((number, offset, body))
        offset += len(line)
    return found


def stopping_points(line: str, keystrokes: int) -> list[int]:
    """Columns of `line` where a typist can pause after typing `keystrokes` characters: at
    the end of a word, never inside one (servers rightly decline to complete half a word), and
    with the typed characters after the indentation. The end of the line always qualifies."""
    earliest = len(line) - len(line.lstrip()) + keystrokes
    return [
        column
        for column in range(earliest, len(line) + 1)
        if column == len(line) or not _is_word_char(line[column])
    ]


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def rotation(files: Sequence[SourceFile], rng: random.Random) -> Iterator[SourceFile]:
    """Files in endless rounds that visit every file once, languages taking turns (each
    language's files shuffled once): the first positions cover every language, and no file
    gets a second position before every file has had a first."""
    by_language: dict[str, list[SourceFile]] = {}
    for file in files:
        by_language.setdefault(file.language_id, []).append(file)
    groups = [by_language[language] for language in sorted(by_language)]
    for group in groups:
        rng.shuffle(group)
    one_round = [file for turn in zip_longest(*groups) for file in turn if file is not None]
    while one_round:
        yield from one_round


def sample_positions(
    files: Sequence[SourceFile], count: int, keystrokes: int, seed: int
) -> list[CursorPosition]:
    """`count` cursor positions, at most one per line, spread over languages and files (fewer
    when the workspace has fewer usable lines)."""
    rng = random.Random(seed)
    texts: dict[Path, str] = {}
    candidates: dict[Path, list[tuple[int, int, str]]] = {}
    exhausted: set[Path] = set()
    chosen: list[CursorPosition] = []
    for file in rotation(files, rng):
        if len(chosen) == count or len(exhausted) == len(files):
            break
        if file.path not in candidates:
            text = read_text(file)
            texts[file.path] = text or ""
            found = cursor_candidates(text, file.language_id, keystrokes) if text else []
            # Shuffled once: popping from the end is then a random draw without replacement.
            rng.shuffle(found)
            candidates[file.path] = found
        lines = candidates[file.path]
        if not lines:
            exhausted.add(file.path)
            continue
        line_number, start, body = lines.pop()
        cursor_column = rng.choice(stopping_points(body, keystrokes))
        offset = start + cursor_column
        position = position_at(texts[file.path], offset, UTF16)
        chosen.append(
            CursorPosition(
                file=file,
                offset=offset,
                line=line_number,
                character=position.character,
                column=cursor_column + 1,
                keystrokes=keystrokes,
            )
        )
    return chosen
