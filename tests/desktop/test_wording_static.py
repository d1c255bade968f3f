"""Every word of the login page and the desktop comes from the catalogue, in both languages, and
reads as words: checked on the files, without a browser (``tests/browser/test_wording.py``
looks at the pages as a person sees them).

- every key the pages and modules name, also those they put together (``menu.name.<menu>``,
  ``deadline.unset.<code>``), is in both catalogues, and both have the same keys;
- no English value has Chinese in it, no Chinese value has English words, keys or identifiers
  in it (``tests.support.wording.developer_text``; placeholders such as ``{time}`` are the
  page's to fill);
- the desktop's and the login page's scripts put no text of their own on the page: no Chinese
  anywhere in their code, and no literal words where text is shown (``textContent``,
  ``setText``, ``text:``, titles, labels, placeholders, the children of ``el()``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ivr.speech.menus import MAIN_MENU
from tests.support.wording import developer_text

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "agent_desktop" / "static"
LANGUAGES = ("zh-CN", "en-US")
#: The modules of the desktop and the login page (the wallboard's have their own checks).
MODULES = sorted([*(STATIC / "desktop").glob("*.js"), *(STATIC / "lib").glob("*.js"), STATIC / "login.js"])
PLACEHOLDER = re.compile(r"\{\w+\}")
HAN = re.compile(r"[\u3400-\u9fff]")

#: Keys the modules build from a value: (template, the values it takes).
BUILT_KEYS = {
    "menu.name.{}": ("main_menu", "ask_city", "in_queue", "transfer", "other"),
    "enum.menu_choice.{}": tuple(MAIN_MENU.values()),
    "deadline.unset.{}": ("calendar_not_published", "other"),
}


def catalogue(language: str) -> dict[str, str]:
    return dict(json.loads((STATIC / "i18n" / f"{language}.json").read_text(encoding="utf-8")))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- a small JS lexer


def code_and_strings(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The code without its comments (strings replaced by ``"…"`` placeholders of the same
    quote), and every string literal's text with its offset in that code. Template literals
    give their fixed parts; what is inside ``${...}`` is code again."""
    out: list[str] = []
    strings: list[tuple[int, str]] = []
    i, n = 0, len(source)
    brace_stack: list[str] = []  # "code" or "template" for every open { or ${

    def read_string(quote: str, start: int) -> int:
        j, text = start + 1, []
        while j < n and source[j] != quote:
            if source[j] == "\\":
                text.append(source[j:j + 2])
                j += 2
                continue
            text.append(source[j])
            j += 1
        strings.append((len("".join(out)), "".join(text)))
        out.append(f"{quote}…{quote}")
        return j + 1

    def read_template(start: int) -> int:
        j, text = start, []
        while j < n:
            c = source[j]
            if c == "\\":
                text.append(source[j:j + 2])
                j += 2
            elif c == "`":
                strings.append((len("".join(out)), "".join(text)))
                out.append("…`")
                return j + 1
            elif source.startswith("${", j):
                strings.append((len("".join(out)), "".join(text)))
                out.append("…${")
                brace_stack.append("template")
                return j + 2
            else:
                text.append(c)
                j += 1
        return j

    prev_significant = ""
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "\"'":
            i = read_string(c, i)
            prev_significant = "x"
        elif c == "`":
            out.append("`")
            i = read_template(i + 1)
            prev_significant = "x"
        elif c == "/" and prev_significant in ("", "(", ",", "=", ":", "[", "!", "&", "|", "?", "{", "}", ";", "\n"):
            # A regular expression literal: skipped whole (it is no text).
            j = i + 1
            in_class = False
            while j < n and (source[j] != "/" or in_class):
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            out.append("/re/")
            i = j + 1
            prev_significant = "x"
        elif c == "{":
            brace_stack.append("code")
            out.append(c)
            i += 1
            prev_significant = c
        elif c == "}":
            kind = brace_stack.pop() if brace_stack else "code"
            if kind == "template":
                out.append("`")
                i = read_template(i + 1)
                prev_significant = "x"
            else:
                out.append(c)
                i += 1
                prev_significant = c
        else:
            out.append(c)
            if not c.isspace():
                prev_significant = c if c in "(,=:[!&|?{};" else "x"
            i += 1
    return "".join(out), strings


#: Where a string literal is shown to a person: assigned to text, given as text, as a label.
SHOWN_AT = [
    re.compile(r"\.(?:textContent|innerText|title|placeholder|alt)\s*=\s*$"),
    re.compile(r"\bsetText\([^,()]+,\s*$"),
    re.compile(r"(?:\btext|\btitle|\bplaceholder|\balt|[\"']aria-label[\"'])\s*:\s*$"),
    re.compile(r"\bsetAttribute\(\s*[\"'](?:title|aria-label|placeholder|alt)[\"']\s*,\s*$"),
    re.compile(r"\bel\(\s*[\"'][^\"']*[\"']\s*,\s*\{[^{}]*\}\s*,\s*(?:[^,()]+,\s*)*$"),
    re.compile(r"\bdocument\.title\s*=\s*$"),
    re.compile(r"\b(?:alert|confirm|prompt)\(\s*$"),
]
#: Words: three Latin letters in a row, or any Chinese (example values such as a credit code
#: "91330106MA27U8KJ4R" are not words).
WORDS = re.compile(r"[A-Za-z]{3,}|[\u3400-\u9fff]")


def shown_literals(path: Path) -> list[str]:
    code, strings = code_and_strings(read(path))
    found = []
    for offset, text in strings:
        before = code[max(0, offset - 200):offset]
        if any(p.search(before) for p in SHOWN_AT) and WORDS.search(text):
            found.append(text)
    return found


def test_the_lexer_finds_shown_literals_and_skips_comments() -> None:
    sample = (
        '// 注释里的中文不算\nnode.textContent = "Saved";\nsetText("x", "保存");\n'
        'el("li", {}, "Open");\nel("li", { text: "Close" });\nconst k = t("drafts.title");\n'
        'const re = /"[a-z]+"/;\nconst s = `a ${b ? "c" : `d`} e`;\nnode.textContent = "–";\n'
    )
    tmp = ROOT / "test-artifacts" / "lexer-sample.js"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_text(sample, encoding="utf-8")
    assert sorted(shown_literals(tmp)) == ["Close", "Open", "Saved", "保存"]
    code, strings = code_and_strings(sample)
    assert "注释" not in code
    assert [text for _, text in strings if text in ("c", "d", "a ", " e")] == ["a ", "c", "d", " e"]


# --------------------------------------------------------------------------- the catalogues


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = (catalogue(language) for language in LANGUAGES)
    assert sorted(set(zh) ^ set(en)) == [], "keys in one language only"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_value_reads_as_words_of_its_language(language: str) -> None:
    bad = {}
    for key, value in catalogue(language).items():
        found = developer_text(PLACEHOLDER.sub(" ", value), language)
        if found:
            bad[key] = (value, found)
    assert not bad, f"{language}: values that are not words of the language: {bad}"


def test_no_english_value_has_chinese_in_it() -> None:
    allowed = {"lang.zh-CN"}  # the language switch offers Chinese in Chinese
    bad = {key: value for key, value in catalogue("en-US").items() if HAN.search(value) and key not in allowed}
    assert not bad, bad


def test_a_value_is_translated_not_copied() -> None:
    zh, en = (catalogue(language) for language in LANGUAGES)
    same = {key for key in zh if zh[key] == en[key]
            and re.search(r"[A-Za-z]{3,}|[\u3400-\u9fff]", PLACEHOLDER.sub(" ", zh[key]))}
    assert same <= {"lang.zh-CN", "lang.en-US"}, f"the same words in both languages: {sorted(same)}"


# --------------------------------------------------------------------------- keys the modules use


def keys_named() -> dict[str, str]:
    namespaces = {key.split(".", 1)[0] for key in catalogue("zh-CN")}
    literal = re.compile(rf"""^((?:{"|".join(sorted(namespaces))})\.[\w.-]+)$""")
    used: dict[str, str] = {}
    for path in MODULES:
        for _offset, text in code_and_strings(read(path))[1]:
            if literal.match(text) and not text.endswith("."):
                used[text] = path.name
    for path in (STATIC / "index.html", STATIC / "desktop" / "index.html"):
        for key in re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', read(path)):
            used[key] = path.name
    for module in MODULES:  # data-i18n attributes written by modules (the ticket form)
        for key in re.findall(r'"data-i18n(?:-[a-z-]+)?":\s*"([^"]+)"', read(module)):
            used[key] = module.name
    for template, values in BUILT_KEYS.items():
        for value in values:
            used[template.format(value)] = "built by a module"
    return used


def test_every_key_the_login_page_and_the_desktop_name_is_in_both_catalogues() -> None:
    used = keys_named()
    assert len(used) > 150, f"the scan found only {len(used)} keys: has the code changed?"
    for language in LANGUAGES:
        texts = catalogue(language)
        missing = {key: where for key, where in used.items() if key not in texts}
        assert not missing, f"{language}.json lacks {missing}"


def test_the_modules_that_build_keys_are_known_to_this_check() -> None:
    built = set()
    for path in MODULES:
        built |= set(re.findall(r"`((?:[a-z_]+\.)+)\$\{", read(path)))
    known = {template.split("{}")[0] for template in BUILT_KEYS} | {"enum.", "ticketform.field.", "ticketform.section."}
    assert built <= known, f"keys built from values that BUILT_KEYS does not list: {sorted(built - known)}"


# --------------------------------------------------------------------------- no words in the code


def test_the_modules_scanned_are_the_desktops_and_the_login_pages() -> None:
    names = {p.relative_to(STATIC).as_posix() for p in MODULES}
    assert {"login.js", "desktop/desktop.js", "desktop/ticket.js", "desktop/callcard.js", "lib/i18n.js"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_a_module_has_no_chinese_in_its_code(path: Path) -> None:
    code, strings = code_and_strings(read(path))
    chinese = [text for _offset, text in strings if HAN.search(text)] + HAN.findall(code)
    assert not chinese, f"{path.name}: Chinese outside the catalogue: {chinese}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_a_module_shows_no_literal_words(path: Path) -> None:
    assert not shown_literals(path), f"{path.name} shows words of its own, not through t(): {shown_literals(path)}"
