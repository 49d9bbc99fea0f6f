"""A PNG of a terminal screen: tmux's `capture-pane -e` output (text with SGR colour codes)
rendered as HTML in a grid of monospace cells, photographed by headless Chromium. The picture
is of the real screen Neovim drew, not of a mock-up."""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
# xterm's 16 colours.
BASE16 = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]  # fmt: skip
FOREGROUND, BACKGROUND = "#e0e0e0", "#1c1c1c"


@dataclass(frozen=True)
class Style:
    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False

    def css(self) -> str:
        fg, bg = self.fg or FOREGROUND, self.bg or BACKGROUND
        if self.reverse:
            fg, bg = bg, fg
        rules = [f"color:{fg}", f"background:{bg}"]
        if self.bold:
            rules.append("font-weight:bold")
        if self.italic:
            rules.append("font-style:italic")
        if self.underline:
            rules.append("text-decoration:underline")
        return ";".join(rules)


def _xterm256(n: int) -> str:
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        levels = [0, 95, 135, 175, 215, 255]
        r, g, b = levels[n // 36], levels[n // 6 % 6], levels[n % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    gray = 8 + (n - 232) * 10
    return f"#{gray:02x}{gray:02x}{gray:02x}"


def _apply(style: Style, params: str) -> Style:
    codes = [int(c) if c else 0 for c in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = Style()
        elif code in (1, 3, 4, 7):
            name = {1: "bold", 3: "italic", 4: "underline", 7: "reverse"}[code]
            style = replace(style, **{name: True})
        elif code in (22, 23, 24, 27):
            name = {22: "bold", 23: "italic", 24: "underline", 27: "reverse"}[code]
            style = replace(style, **{name: False})
        elif code in (38, 48) and i + 1 < len(codes):
            if codes[i + 1] == 5 and i + 2 < len(codes):
                color, i = _xterm256(codes[i + 2]), i + 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                r, g, b = codes[i + 2 : i + 5]
                color, i = f"#{r:02x}{g:02x}{b:02x}", i + 4
            else:
                color = None
            style = replace(style, **{"fg" if code == 38 else "bg": color})
        elif code == 39:
            style = replace(style, fg=None)
        elif code == 49:
            style = replace(style, bg=None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style = replace(style, fg=BASE16[code - 30 if code < 90 else code - 82])
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style = replace(style, bg=BASE16[code - 40 if code < 100 else code - 92])
        i += 1
    return style


def screen_html(captured: str, columns: int) -> str:
    rows = []
    style = Style()
    for line in captured.rstrip("\n").split("\n"):
        spans, position = [], 0
        for match in SGR.finditer(line):
            text = line[position : match.start()]
            if text:
                spans.append(f'<span style="{style.css()}">{html.escape(text)}</span>')
            style = _apply(style, match.group(1))
            position = match.end()
        if line[position:]:
            spans.append(f'<span style="{style.css()}">{html.escape(line[position:])}</span>')
        rows.append("".join(spans))
    body = "\n".join(rows)
    return (
        "<!doctype html><meta charset=utf-8><style>"
        f"body{{margin:0;background:{BACKGROUND}}}"
        f"pre{{margin:8px;font:15px/1.3 'DejaVu Sans Mono',monospace;color:{FOREGROUND};"
        f"width:{columns}ch;white-space:pre}}</style><pre>{body}</pre>"
    )


def capture_pane(socket_name: str, target: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket_name, "capture-pane", "-e", "-p", "-t", target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def screenshot(captured: str, columns: int, rows: int, png: Path, chromium: str) -> None:
    page = png.with_suffix(".html")
    page.write_text(screen_html(captured, columns), encoding="utf-8")
    width, height = columns * 9 + 16, int(rows * 19.5) + 16
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={png.parent / 'chromium-profile'}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
