"""The browser pages checked without a browser or a server: they load nothing from outside
(no CDN: agents' workstations often have no Internet), every text they show exists in both
languages, every module they import is there and exports what is imported, and the SIP.js
bundle is built from npm by ``scripts/build_web.sh``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core.vocabulary import BUSINESS_LINES, HANDLING_LEVELS
from ivr.speech.menus import MAIN_MENU
from national.contract import CASE_TYPES, DEMANDS, RECOGNIZERS, SUBJECT_KINDS
from queues.engine import AgentState
from tickets.fields import BY_PATH
from tickets.models import DeliveryState, Status

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "agent_desktop" / "static"
BUNDLE = STATIC / "vendor" / "sip.js"
BUILD_SCRIPT = ROOT / "scripts" / "build_web.sh"
LANGUAGES = ("zh-CN", "en-US")
PAGES = {"/": STATIC / "index.html", "/desktop/": STATIC / "desktop" / "index.html",
         "/wallboard/": STATIC / "wallboard" / "index.html"}
#: XML namespaces are names, not addresses: nothing is fetched from them.
NAMESPACES = {"http://www.w3.org/2000/svg"}

#: The value sets the pages label with tEnum(kind, value), from where the server takes them.
ENUMS: dict[str, tuple[str, ...]] = {
    "case_type": CASE_TYPES,
    "business_line": BUSINESS_LINES,
    "demand": DEMANDS,
    "subject_kind": SUBJECT_KINDS,
    "level": HANDLING_LEVELS,
    "recognized_by": RECOGNIZERS,
    "ticket_status": tuple(s.value for s in Status),
    "delivery_state": tuple(s.value for s in DeliveryState),
    "agent_state": tuple(s.value for s in AgentState),
    # The contract's break reasons; queue login starts on a break ("login"); the queue engine
    # puts an agent who let a call ring out on one ("no_answer"), the desktop one whose SIP
    # phone went offline ("phone_offline", agent_desktop.phones).
    "break_reason": ("lunch", "meeting", "training", "other", "login", "no_answer", "phone_offline"),
    "call_state": ("ringing", "connected", "ended"),
    "deadline_kind": ("accept_by", "finish_by", "verify_by"),
    # What a caller chose in the IVR's main menu (the call card's "choice" and menu path).
    "menu_choice": tuple(MAIN_MENU.values()),
}


def authored(suffix: str) -> list[Path]:
    """Our own files of one kind (the built vendor bundle is not ours)."""
    return sorted(p for p in STATIC.rglob(f"*{suffix}") if "vendor" not in p.relative_to(STATIC).parts)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def catalogue(language: str) -> dict[str, str]:
    return json.loads(read(STATIC / "i18n" / f"{language}.json"))


class _Page(HTMLParser):
    """What the checks need from a page: its tags with attributes, and text outside data-i18n."""

    VOID = {"meta", "link", "input", "br", "img", "hr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[tuple[str, dict[str, str | None]]] = []
        self.untranslated: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        # Only words need translating: a placeholder such as "–" reads the same in every language.
        if not re.search(r"[^\W\d_]", data) or not self.open:
            return
        tag, attrs = self.open[-1]
        if tag not in ("script", "style") and "data-i18n" not in attrs:
            self.untranslated.append(f"<{tag}> {data.strip()!r}")


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(read(path))
    return page


# --------------------------------------------------------------------------- the bundle


@pytest.fixture(scope="module")
def bundle() -> str:
    # Normally a no-op: bootstrap has run the script already, and it skips an up-to-date bundle.
    if shutil.which("npm") is None and not BUNDLE.exists():
        pytest.fail("npm is not installed and the SIP.js bundle is missing: run scripts/bootstrap.sh")
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"scripts/build_web.sh failed:\n{done.stdout}\n{done.stderr}"
    assert BUNDLE.is_file(), "scripts/build_web.sh ran but wrote no agent_desktop/static/vendor/sip.js"
    return read(BUNDLE)


def test_the_sip_bundle_is_one_es_module_exporting_what_the_phone_uses(bundle: str) -> None:
    exported = exports_of(bundle)
    needed = {"UserAgent", "Registerer", "RegistererState", "SessionState", "Invitation"}
    assert needed <= exported, f"vendor/sip.js lacks {sorted(needed - exported)}"
    assert not re.search(r"""(?:\bfrom|\bimport)\s*\(?\s*["'](?:https?:)?//""", bundle), \
        "the bundle imports code from another site"


def test_the_bundle_is_built_from_the_pinned_sip_js_of_the_lock_file(bundle: str) -> None:
    web = ROOT / "agent_desktop" / "web"
    declared = json.loads(read(web / "package.json"))["devDependencies"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", declared["sip.js"]), "sip.js must be pinned to one exact version"
    locked = json.loads(read(web / "package-lock.json"))["packages"]["node_modules/sip.js"]["version"]
    assert locked == declared["sip.js"]


def test_building_again_with_nothing_changed_does_nothing(bundle: str) -> None:
    before = BUNDLE.stat().st_mtime_ns
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert BUNDLE.stat().st_mtime_ns == before
    assert done.stdout == "", f"an up-to-date build should be silent, said: {done.stdout!r}"


def test_the_built_bundle_and_node_modules_are_not_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "agent_desktop/static/vendor/sip.js"], cwd=ROOT)
    assert ignored.returncode == 0, "agent_desktop/static/vendor/ must be in .gitignore"
    ignored = subprocess.run(["git", "check-ignore", "-q", "agent_desktop/web/node_modules/x"], cwd=ROOT)
    assert ignored.returncode == 0, "node_modules/ must be in .gitignore"


# --------------------------------------------------------------------------- only local assets


@pytest.mark.parametrize("url", PAGES)
def test_a_page_loads_only_files_of_our_own_static_directory(url: str) -> None:
    page_file = PAGES[url]
    page = parse(page_file)
    refs = [(tag, name, attrs[name]) for tag, attrs in page.tags for name in ("src", "href")
            if attrs.get(name) is not None]
    assert refs, f"{url}: no src or href found: has the markup changed?"
    for tag, name, ref in refs:
        if tag == "link" and ref == "data:,":  # the empty favicon: no request at all
            continue
        assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.I), f"{url}: <{tag} {name}={ref!r}> is not local"
        target = (page_file.parent / ref.split("?")[0]).resolve()
        if ref.startswith("/"):
            target = (STATIC / ref.lstrip("/")).resolve()
        assert target.is_relative_to(STATIC) and target.is_file(), f"{url}: {ref!r} is not a file of static/"


def test_the_file_scans_find_our_pages_modules_and_stylesheets() -> None:
    # The checks run per file below would all be skipped, and nothing fail, if none were found.
    assert authored(".html") and authored(".js") and authored(".css"), f"nothing authored found under {STATIC}"


@pytest.mark.parametrize("path", authored(".js") + authored(".html") + authored(".css"),
                         ids=lambda p: str(p.relative_to(STATIC)))
def test_no_authored_file_names_an_outside_address(path: Path) -> None:
    addresses = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", read(path), re.I)) - NAMESPACES
    assert not addresses, f"{path.name} refers to {sorted(addresses)}"


def test_stylesheets_import_nothing_from_elsewhere() -> None:
    stylesheets = authored(".css")
    assert stylesheets, f"no stylesheet found under {STATIC}"
    for path in stylesheets:
        text = read(path)
        assert "@import" not in text, f"{path.name}: @import"
        assert not re.search(r"url\(\s*['\"]?(?!data:)", text), f"{path.name}: url() of a file"


# --------------------------------------------------------------------------- modules


IMPORT = re.compile(r"""import\s*(?:\{([^}]*)\}\s*from\s*)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)""")


def exports_of(source: str) -> set[str]:
    names = set(re.findall(r"export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)", source))
    for block in re.findall(r"export\s*\{([^}]*)\}", source):
        for item in block.split(","):
            if item.strip():
                names.add(item.split(" as ")[-1].strip())
    return names


@pytest.mark.parametrize("path", authored(".js"), ids=lambda p: str(p.relative_to(STATIC)))
def test_every_import_of_a_module_exists_and_exports_the_imported_names(path: Path, bundle: str) -> None:
    for names, static_ref, dynamic_ref in IMPORT.findall(read(path)):
        ref = static_ref or dynamic_ref
        assert ref.startswith("."), f"{path.name} imports {ref!r}: only relative files of static/ are served"
        target = (path.parent / ref).resolve()
        assert target.is_file(), f"{path.name} imports {ref!r}, which does not exist"
        exported = exports_of(read(target))
        wanted = {item.split(" as ")[0].strip() for item in names.split(",") if item.strip()}
        assert wanted <= exported, f"{path.name} imports {sorted(wanted - exported)} that {ref} does not export"


@pytest.mark.parametrize("path", authored(".js"), ids=lambda p: str(p.relative_to(STATIC)))
def test_every_module_is_valid_javascript(path: Path, bundle: str) -> None:
    # The bundle fixture has run scripts/build_web.sh, which installs Node.js when it is missing.
    assert shutil.which("node"), "node is missing although scripts/build_web.sh ran"
    done = subprocess.run(["node", "--input-type=module", "--check"], input=read(path), capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NODE_OPTIONS": ""})
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- texts


def test_both_languages_have_the_same_texts_with_the_same_placeholders() -> None:
    zh, en = (catalogue(language) for language in LANGUAGES)
    assert sorted(set(zh) ^ set(en)) == [], "keys in one language only"
    for key in zh:
        assert isinstance(zh[key], str) and zh[key].strip(), f"zh-CN {key} is empty"
        assert isinstance(en[key], str) and en[key].strip(), f"en-US {key} is empty"
        assert set(re.findall(r"\{\w+\}", zh[key])) == set(re.findall(r"\{\w+\}", en[key])), key


def namespaces() -> set[str]:
    return {key.split(".", 1)[0] for key in catalogue("zh-CN")}


def keys_used() -> dict[str, str]:
    """Every text key a page or a module names, with where it is named."""
    used: dict[str, str] = {}
    for path in authored(".html"):
        for _tag, attrs in parse(path).tags:
            for name, value in attrs.items():
                if name.startswith("data-i18n") and value:
                    used[value] = path.name
    names = "|".join(sorted(namespaces()))
    literal = re.compile(rf"""["'`]((?:{names})\.[\w.-]+)["'`]""")
    for path in authored(".js"):
        for key in literal.findall(read(path)):
            used[key] = path.name
    return used


def test_every_text_the_pages_name_exists_in_both_languages() -> None:
    used = keys_used()
    assert len(used) > 100, "the scan found too few keys: has the markup changed?"
    for language in LANGUAGES:
        missing = {key: where for key, where in used.items() if key not in catalogue(language)}
        assert not missing, f"{language}.json lacks {missing}"


def test_every_enumerated_value_the_server_sends_has_a_label_in_both_languages() -> None:
    for language in LANGUAGES:
        texts = catalogue(language)
        missing = [f"enum.{kind}.{value}" for kind, values in ENUMS.items() for value in values
                   if f"enum.{kind}.{value}" not in texts]
        assert not missing, f"{language}.json lacks {missing}"


def test_every_kind_of_value_the_modules_label_is_known_to_these_checks() -> None:
    kinds = {kind for path in authored(".js") for kind in re.findall(r"tEnum\(\s*[\"'](\w+)[\"']", read(path))}
    assert kinds <= set(ENUMS), f"add {sorted(kinds - set(ENUMS))} to ENUMS with the values the server sends"


def ticket_form_fields() -> list[tuple[str, str | None]]:
    """(path, enumeration) of every field of the ticket form, read from ticket-fields.js."""
    source = read(STATIC / "desktop" / "ticket-fields.js")
    return [(path, enum or None) for path, enum in
            re.findall(r"""\{\s*path:\s*"([\w.]+)"(?:[^}]*?enum:\s*"(\w+)")?""", source)]


def test_the_ticket_form_has_a_labelled_input_for_each_field_the_brief_names() -> None:
    paths = {path for path, _ in ticket_form_fields()}
    wanted = {"case_type", "business_line", "caller.phone", "caller.name", "caller.anonymous", "respondent.name",
              "respondent.credit_code", "respondent.region", "respondent.address", "subject.kind",
              "subject.category", "subject.amount", "subject.purchased_on", "summary", "demand",
              "handling.region", "handling.level", "handling.station"}
    assert wanted <= paths, f"missing {sorted(wanted - paths)}"
    assert paths <= set(BY_PATH), f"not ticket fields: {sorted(paths - set(BY_PATH))}"
    for language in LANGUAGES:
        texts = catalogue(language)
        assert not [p for p in paths if f"ticketform.field.{p}" not in texts], language


def test_the_ticket_forms_choices_are_the_platforms_enumerations() -> None:
    source = read(STATIC / "desktop" / "ticket-fields.js")
    for kind, values in (("case_type", CASE_TYPES), ("business_line", BUSINESS_LINES), ("demand", DEMANDS),
                         ("subject_kind", SUBJECT_KINDS), ("level", HANDLING_LEVELS)):
        listed = re.search(rf"{kind}:\s*\[([^\]]*)\]", source)
        assert listed, f"ENUMS.{kind} is missing in ticket-fields.js"
        assert tuple(re.findall(r'"(\w+)"', listed.group(1))) == tuple(values), kind


# --------------------------------------------------------------------------- markup


@pytest.mark.parametrize("url", PAGES)
def test_a_page_shows_no_text_outside_the_translations(url: str) -> None:
    page = parse(PAGES[url])
    assert not page.untranslated, f"{url}: text without data-i18n: {page.untranslated}"
    assert ("html", {"lang": "zh-CN"}) in page.tags, f"{url}: <html lang> must start as zh-CN"


@pytest.mark.parametrize("url", PAGES)
def test_a_page_offers_the_language_switch(url: str) -> None:
    page = parse(PAGES[url])
    options = [attrs.get("value") for tag, attrs in page.tags if tag == "option" and attrs.get("value") in LANGUAGES]
    assert ("select", {"id": "lang-switch", "data-testid": "lang-switch"}) in page.tags
    assert sorted(options) == sorted(LANGUAGES)


@pytest.mark.parametrize("url", PAGES)
def test_every_input_has_a_label_and_every_button_a_text(url: str) -> None:
    text = read(PAGES[url])
    page = parse(PAGES[url])
    labelled_ids = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', text))
    wrapped = {m for m in re.findall(r"<label[^>]*>(.*?)</label>", text, re.S)}
    # Every page has at least the language switch: a page with no control found is a broken scan.
    assert any(tag in ("input", "select", "textarea", "button") for tag, _ in page.tags), f"{url}: no control"
    for tag, attrs in page.tags:
        if tag in ("input", "select", "textarea"):
            testid = attrs.get("data-testid")
            ok = (attrs.get("id") in labelled_ids or "aria-label" in attrs or "data-i18n-aria-label" in attrs
                  or any(f'data-testid="{testid}"' in inner for inner in wrapped))
            assert ok, f"{url}: <{tag} data-testid={testid!r}> has no label"
        if tag == "button":
            assert "data-i18n" in attrs or "aria-label" in attrs, f"{url}: a button without text: {attrs}"


@pytest.mark.parametrize("url", PAGES)
def test_test_ids_are_unique_on_a_page(url: str) -> None:
    ids = [attrs["data-testid"] for _tag, attrs in parse(PAGES[url]).tags if "data-testid" in attrs]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_focus_stays_visible_for_keyboard_users() -> None:
    css = read(STATIC / "css" / "hotline.css")
    assert re.search(r":focus-visible\s*\{[^}]*outline:\s*\d", css), "a visible focus outline is required"
    assert not re.search(r"outline:\s*(?:none|0)\b", css), "no control may hide its focus"
