"""The one runner of the python blocks in docs/*.md, shared by the per-page docs tests.

Each page's test picks its blocks (the whole page, or some of its ``## `` sections) and runs each block
on its own, in a fresh namespace, exactly as written: a reader copying a block gets what the test ran.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def page_text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def sections(text: str, titles: tuple[str, ...]) -> str:
    """The ``## `` sections of ``text`` whose titles start with one of ``titles``."""
    parts = re.split(r"^## ", text, flags=re.M)
    return "\n".join(s for s in parts if s.startswith(titles))


def python_blocks(page: str, titles: tuple[str, ...] | None = None) -> list[str]:
    """The python blocks of ``docs/<page>`` (of the sections ``titles`` only, when given)."""
    text = page_text(page)
    if titles is not None:
        text = sections(text, titles)
    return _BLOCK.findall(text)


def run_block(block: str, where: str, module_name: str) -> dict[str, object]:
    """Run one block in a fresh namespace named ``module_name``; ``where`` names it in tracebacks.

    A block may set a logger's level (to keep its output quiet); the levels are put back after it, so
    a page's example cannot silence the log lines a later test asserts on."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    levels = {logger: logger.level for logger in loggers}
    namespace: dict[str, object] = {"__name__": module_name}
    try:
        exec(compile(block, where, "exec"), namespace)
    finally:
        for logger in [
            logging.getLogger(),
            *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
        ]:
            logger.setLevel(levels.get(logger, logging.NOTSET))
    return namespace
