"""Which files of a workspace the bench types into, and where the cursor goes.

Files are the workspace's source files as the workspace index finds them (`indexer.walk`:
`.gitignore` at every level, no vendored, generated or secret files). Positions are sampled
with a seeded generator from a sorted file list, so the same seed on the same tree gives the
same positions, and languages take turns, so a repository mostly in one language still gets
its other languages measured. This module reads files; it never talks to the server.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from completion.positions import UTF16, lsp_lines, position_at
from indexer.walk import WalkOptions, WorkspaceRules
from lsp_server.documents import LANGUAGE_BY_SUFFIX, UnusableText, read_source_file

# Lines that are only a comment: a completion model is not asked to finish those in a bench.
COMMENT_STARTS: dict[str, tuple[str, ...]] = {"python": ("#",)}
C_LIKE_COMMENTS = ("//", "/*", "*")
# Bigger files are generated or vendored more often than written by hand.
MAX_SOURCE_BYTES = 512 * 1024


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


def workspace_files(root: Path) -> Iterator[Path]:
    """Every file under `root` that git would not ignore, in name order (what a test run in a
    copy of the workspace may need: data files too, but no build output)."""
    rules = WorkspaceRules(root)
    stack = [rules.root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        folders = []
        for entry in entries:
            path = Path(entry.path)
            relative = path.relative_to(rules.root).as_posix()
            # Links are skipped: they lead out of the workspace or to a file listed anyway.
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name != ".git" and not rules.ignored(relative, is_folder=True):
                    folders.append(path)
            elif entry.is_file() and not rules.ignored(relative, is_folder=False):
                yield path
        stack.extend(reversed(folders))


def source_files(root: Path) -> list[SourceFile]:
    """The files the bench types into: those the workspace index reads (source code, by the
    index's own rules: .gitignore, no vendored, generated or secret files), in a language the
    server names, sorted by path."""
    rules = WorkspaceRules(root, WalkOptions(max_file_bytes=MAX_SOURCE_BYTES))
    found = []
    for file in rules.walk():
        path = rules.root / file.path
        language_id = LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), "")
        if language_id:
            found.append(SourceFile(path, file.path, language_id))
    return sorted(found, key=lambda file: file.relative)


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
        if column == len(line) or not is_word_char(line[column])
    ]


def is_word_char(char: str) -> bool:
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
