"""What a person must never read on a page or in a message from the server: catalogue keys that
were not translated, identifiers (``main_menu:1:complaint``, ``finish_by``, ``sip_endpoint``),
programming words (``undefined``, ``None``), English inside the Chinese pages and Chinese inside
the English ones.

``developer_text(text, language)`` gives back the offending fragments (empty when the text
reads as it should); ``visible_text(page)`` collects what a person sees on a Playwright page,
with the placeholders, titles and labels a screen reader speaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page

#: Latin words a Chinese page may show: names of things that have no other name here.
LATIN_IN_CHINESE = frozenset({
    "SIP", "WebRTC", "ID", "IVR", "ARI", "CSV", "PDF", "URL", "OK", "English", "DTMF", "PJSIP",
    "Asterisk", "Redis", "QR", "KPI", "AM", "PM", "VIP",
})
#: Han text an English page may show: the language switch offers Chinese in Chinese.
HAN_IN_ENGLISH = frozenset({"中文", "简体中文"})

# A catalogue key or an identifier: two or more lower-case words joined by "." or "_"
# ("ticket.status.draft", "finish_by", "sip_endpoint"), or a menu path ("main_menu:1:complaint").
_IDENTIFIER = re.compile(r"(?<![\w@/.-])[a-z][a-z0-9]*(?:[._:][a-z0-9]+)+(?![\w@/-])")
_PROGRAMMING = re.compile(r"\b(?:undefined|null|None|NaN|Traceback|\[object Object\]|True|False)\b")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")
_HAN_RUN = re.compile(r"[\u3400-\u9fff]+")
# Addresses and file names are data, not words: e-mail, URLs, host:port.
_DATA = re.compile(r"\S+@\S+|https?://\S+|\b[\w.-]+\.(?:png|wav|json|toml|csv)\b|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?")


def developer_text(
    text: str, language: str, *, allow: Iterable[str] = (),
) -> list[str]:
    """The fragments of ``text`` that are not words for a person reading ``language``
    (``zh-CN`` or ``en-US``). ``allow`` lists data a page shows as it is (names, numbers typed)."""
    for allowed in allow:
        text = text.replace(allowed, " ")
    text = _DATA.sub(" ", text)
    found = [m.group(0) for m in _IDENTIFIER.finditer(text)]
    found += [m.group(0) for m in _PROGRAMMING.finditer(text)]
    found += [m.group(0) for m in _PLACEHOLDER.finditer(text)]
    if language.startswith("zh"):
        found += [w for w in _LATIN_WORD.findall(text) if w not in LATIN_IN_CHINESE]
    else:
        found += [h for h in _HAN_RUN.findall(text) if h not in HAN_IN_ENGLISH]
    return sorted(set(found))


_VISIBLE_JS = """() => {
  const parts = [document.title, document.body ? document.body.innerText : ""];
  for (const node of document.querySelectorAll("[placeholder], [title], [aria-label]")) {
    for (const name of ["placeholder", "title", "aria-label"]) {
      const value = node.getAttribute(name);
      if (value) parts.push(value);
    }
  }
  return parts.join("\\n");
}"""


async def visible_text(page: Page) -> str:
    """What a person reads on ``page`` now, with placeholders, titles and ARIA labels."""
    return str(await page.evaluate(_VISIBLE_JS))
