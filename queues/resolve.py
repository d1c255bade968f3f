"""Which jurisdiction a call belongs to, from what we know when it arrives.

In order: the area code of the dialled line (a caller who dialled 057112315 is calling
Hangzhou's 12315), else the caller's own number (landline area code, or mobile number segment),
else a city the caller says or keys in, else the configured default. The agent can correct it
later (the rule is the county where the business operates); this is the first guess.

Places come from phonenumbers' geocoder in Chinese ("浙江省杭州市", "海南省海口市、三亚市"),
matched to the tree by name. Where a description names several places (one area code shared by
several cities) the call goes to the lowest jurisdiction above all of them, e.g. 0898 → 海南省.

Importing this module loads phonenumbers' geocoder data (about half a second, once, at start-up);
after that every lookup is a dictionary lookup, cheap enough for the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType, geocoder

from core.jurisdictions import NATIONAL, Jurisdiction, JurisdictionTree, Level, short_name
from core.privacy import mask_phone

logger = logging.getLogger(__name__)

SOURCES = ("dialled_area_code", "caller_landline", "caller_mobile", "spoken_city", "default")
CHINA = 86

# Area codes are prefix-free: 10 and 2x are two digits, the rest three (after the trunk 0).
_AREA_CODE = re.compile(r"0?(10|2\d|[3-9]\d\d)")
_MOBILE = re.compile(r"1[3-9]\d{9}")
# A landline with its area code: 2-3 digits of area code and 7-8 of local number.
_LANDLINE = re.compile(r"(?:10|2\d|[3-9]\d\d)\d{7,8}")
_SEPARATORS = re.compile(r"[\s\-().]")
_FIXED_LINE = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
# Names in phonenumbers' data that no longer exist or are misspelt there.
_RENAMED = {"襄樊": "襄阳市", "株州": "株洲市"}


@dataclass(frozen=True, slots=True)
class Resolution:
    code: str
    source: str  # one of SOURCES


class JurisdictionResolver:
    """Built once at start-up (it precomputes the area-code table); ``resolve`` never raises."""

    def __init__(self, tree: JurisdictionTree, *, default_code: str = NATIONAL) -> None:
        tree.get(default_code)  # a bad default is a configuration error: fail at start-up
        self._tree = tree
        self._default = default_code
        self._provinces = tree.children(NATIONAL)
        self._descriptions: dict[str, str | None] = {}  # bounded: phonenumbers' distinct texts
        self._area_codes = MappingProxyType(self._area_code_table())

    # -- the call path -------------------------------------------------------------------

    @property
    def default_code(self) -> str:
        """Where calls go that nothing places (national by default)."""
        return self._default

    def resolve(
        self, *, area_code: str | None, caller_number: str, spoken_city: str | None = None
    ) -> Resolution:
        steps: tuple[Callable[[], Resolution | None], ...] = (
            lambda: _resolution(self.area_code_city(area_code or ""), "dialled_area_code"),
            lambda: _resolution(*(self.city_of_number(caller_number) or (None, ""))),
            lambda: _resolution(self.spoken_city_code(spoken_city or ""), "spoken_city"),
        )
        for step in steps:
            try:
                found = step()
            except Exception:  # a lookup bug must not drop the call: fall through, loudly
                logger.exception("jurisdiction lookup failed for caller %s", mask_phone(caller_number))
                continue
            if found is not None:
                logger.debug("call from %s -> %s (%s)", mask_phone(caller_number), found.code, found.source)
                return found
        logger.debug("call from %s -> default %s", mask_phone(caller_number), self._default)
        return Resolution(self._default, "default")

    def area_code_city(self, area_code: str) -> str | None:
        """``"0571"`` → ``"330100"`` (杭州市); the trunk 0 is optional; unknown → None."""
        matched = _AREA_CODE.fullmatch(area_code.strip()) if isinstance(area_code, str) else None
        return self._area_codes.get(matched.group(1)) if matched else None

    def city_of_number(self, number: str) -> tuple[str, str] | None:
        """The caller's city from their number, with ``"caller_landline"`` or ``"caller_mobile"``.

        Local numbers without an area code, foreign numbers and anything that is not a
        Chinese number give None.
        """
        national = _national_number(number)
        if national is None:
            return None
        if _MOBILE.fullmatch(national):
            code = self._describe(PhoneNumber(country_code=CHINA, national_number=int(national)))
            return (code, "caller_mobile") if code else None
        if _LANDLINE.fullmatch(national):
            area = national[:2] if national[0] in "12" else national[:3]
            code = self._area_codes.get(area)
            return (code, "caller_landline") if code else None
        logger.debug("caller number %s is not usable for routing", mask_phone(number))
        return None

    def spoken_city_code(self, text: str) -> str | None:
        """A city the caller said or keyed in: a name (杭州, 浙江杭州), a six-digit
        division code, or an area code (0571). Ambiguous names (西湖: Hangzhou or Nanchang)
        give None rather than a guess."""
        text = text.strip() if isinstance(text, str) else ""
        if not text:
            return None
        if text.isdigit():
            if len(text) == 6 and text in self._tree and text != NATIONAL:
                return self._municipal_city(self._tree.get(text)).code
            return self.area_code_city(text) if text.startswith("0") else None
        picked = _pick(text, self._tree.find(text))
        if picked is not None and Level.PROVINCE <= picked.level <= Level.COUNTY:
            return self._municipal_city(picked).code
        return self._match_description(text)

    # -- matching geocoder descriptions to the tree -----------------------------------------

    def _area_code_table(self) -> dict[str, str]:
        """Every area code phonenumbers knows, without the trunk 0, → jurisdiction code."""
        candidates = ["10", *(f"2{d}" for d in range(10)), *(str(n) for n in range(300, 1000))]
        table: dict[str, str] = {}
        for area in candidates:
            number = _landline_in(area)
            code = self._describe(number) if number is not None else None
            if code is not None:
                table[area] = code
        return table

    def _describe(self, number: PhoneNumber) -> str | None:
        # For prefixes it has no place for, the geocoder answers with the country's name,
        # which matches no province below and so gives None.
        text = geocoder.description_for_valid_number(number, "zh")
        if text not in self._descriptions:
            self._descriptions[text] = self._match_description(text)
        return self._descriptions[text]

    def _match_description(self, text: str) -> str | None:
        """``"浙江省杭州市"`` → 330100; ``"海南省海口市、三亚市"`` → 460000 (both cities' province)."""
        province, rest = self._split_province(text)
        if province is None:
            return None
        places = [self._place(part, province) for part in rest.split("、") if part]
        found = [p for p in places if p is not None]
        if not found:
            return self._municipal_city(province).code
        return self._as_city(self._common_ancestor(found)).code

    def _split_province(self, text: str) -> tuple[Jurisdiction | None, str]:
        """The province a description starts with, by full or short name (内蒙古, 广西)."""
        best: tuple[int, Jurisdiction] | None = None
        for province in self._provinces:
            for prefix in {province.name, short_name(province.name)}:
                if text.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), province)
        if best is None:
            return None, text
        return best[1], text[best[0]:]

    def _place(self, name: str, province: Jurisdiction) -> Jurisdiction | None:
        name = _RENAMED.get(short_name(name), name)
        return _pick(name, self._tree.find(name, within=province.code))

    def _common_ancestor(self, places: list[Jurisdiction]) -> Jurisdiction:
        chains = [self._tree.chain(p.code)[::-1] for p in places]  # national first
        common = chains[0][0]
        for level_items in zip(*chains, strict=False):  # down to the shortest chain
            if any(j.code != level_items[0].code for j in level_items):
                break
            common = level_items[0]
        return common

    def _as_city(self, place: Jurisdiction) -> Jurisdiction:
        """Numbers locate a city, not a county: a county named by the geocoder (芒市,
        巢湖市) stands for its city; one under a virtual city (石河子, 仙桃) is a city itself."""
        if place.level >= Level.COUNTY and place.parent is not None:
            parent = self._tree.get(place.parent)
            return place if parent.is_virtual_city else self._as_city(parent)
        return self._municipal_city(place)

    def _municipal_city(self, place: Jurisdiction) -> Jurisdiction:
        """北京 the province and 北京 the city are one place to a caller: route to the city,
        where the municipality's queues are."""
        if place.level is Level.PROVINCE:
            cities = self._tree.children(place.code)
            if len(cities) == 1 and cities[0].name == place.name:
                return cities[0]
        return place


def _resolution(code: str | None, source: str) -> Resolution | None:
    return Resolution(code, source) if code is not None else None


def _pick(query: str, matches: list[Jurisdiction]) -> Jurisdiction | None:
    """The one best match for ``query``, or None when the best matches tie.

    Best means the closest name (exact, then the query as a short name, then the same stem),
    then the highest level (海南 is the province before the Qinghai prefecture); two at the
    same rank and level (西湖区 in Hangzhou and in Nanchang) are ambiguous.
    """
    query = query.strip()

    def rank(j: Jurisdiction) -> tuple[int, int]:
        closeness = 0 if j.name == query else 1 if short_name(j.name) == query else 2
        return closeness, j.level

    if not matches:
        return None
    ranked = sorted(matches, key=rank)
    if len(ranked) > 1 and rank(ranked[0]) == rank(ranked[1]):
        return None
    return ranked[0]


def _landline_in(area: str) -> PhoneNumber | None:
    """A valid landline number with this area code, if phonenumbers knows the area code.

    The geocoder alone would also place area codes that do not exist (it files 0335 秦皇岛
    under the prefix 033, so 0331 would "be" 秦皇岛 too); validity rules out those. Local
    numbers are 7 or 8 digits depending on the area; ones starting with 8 avoid the few
    sub-prefix entries of the geocoder (…100, …95), which describe special services.
    """
    for local in ("8000000", "88000000"):
        number = PhoneNumber(country_code=CHINA, national_number=int(area + local))
        if phonenumbers.number_type(number) in _FIXED_LINE and phonenumbers.is_valid_number(number):
            return number
    return None


def _national_number(number: str) -> str | None:
    """Asterisk's caller id → the national significant number, or None.

    Accepts 13800138000, +8613800138000, 008613800138000, 8613800138000, 057187654321,
    0571-87654321, 013800138000 (a mobile with the trunk 0 some exchanges add).
    """
    if not isinstance(number, str):
        return None
    digits = _SEPARATORS.sub("", number)
    if digits.startswith("+"):
        if not digits.startswith("+86"):
            return None  # a foreign number says nothing about where in China the business is
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) >= 12:
        # 86 + a full national number (10-11 digits); a local 86xxxxxx is 8 digits long.
        digits = digits[2:]
    if not digits.isdigit():
        return None
    return digits[1:] if digits.startswith("0") else digits
