"""A small module to try nexttoken on: `nexttoken complete examples/stack.py:19:25`."""


class Stack:
    """A last-in, first-out stack."""

    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, item: int) -> None:
        self.items.append(item)

    def pop(self) -> int:
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()

    def is_empty(self) -> bool:
        return len(self.
