"""What the desktop's API says to agents, in words they read: the platform's problems and the
desktop's refusals without identifiers (``food_drug``, ``on_call``, ``YYYY-MM-DD``) or
programming words.

The platform's rules (``national.contract``) word their problems for the platform's clients,
naming values by their codes ("must be one of: national, province, ..."); the desktop keeps the
field, the code and every problem, and only says some of them again for the agent at the desk
(:func:`for_agents`). The same words as the pages' catalogue (``static/i18n``), in the form
they take inside a sentence, for the few values a refusal names (a ticket's status, the agent's state).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.problems import Problem
from tickets.fields import BY_PATH

#: Ticket statuses (``enum.ticket_status`` of the catalogue): one word per status.
STATUS_WORDS = {
    "draft": ("草稿", "draft"), "completed": ("已提交", "submitted"), "accepted": ("已受理", "accepted"),
    "rejected": ("不予受理", "not accepted"), "transferred": ("已转办", "transferred"),
    "closed": ("已办结", "closed"),
}
#: Agent states (``enum.agent_state``).
AGENT_STATE_WORDS = {
    "offline": ("离线", "offline"), "available": ("空闲", "available"), "ringing": ("振铃", "ringing"),
    "on_call": ("通话中", "on a call"), "wrap_up": ("话后处理", "in wrap-up"), "break": ("小休", "on a break"),
}

#: bad_format of a field the agent types, said with an example instead of a pattern's name.
_FORMATS = {
    "subject.amount": ("应为以元为单位的金额，最多两位小数，如 199.00",
                       "must be an amount in yuan with at most two decimals, for example 199.00"),
    "subject.purchased_on": ("应为有效日期，按年-月-日书写，如 2026-03-15",
                             "must be a real date written year-month-day, for example 2026-03-15"),
}


def words(table: dict[str, tuple[str, str]], value: str | None) -> tuple[str, str]:
    """(zh, en) of a value; a value the table does not know as "other" rather than its code."""
    return table.get(value or "", ("其他", "other"))


def for_agents(problem: Problem) -> Problem:
    """The same problem (field and code kept), said in words for the agent where the platform's
    wording names codes or patterns."""
    field, code = problem.field, problem.code
    if code == "not_allowed" and problem.message_en.startswith("must be one of"):
        return Problem(field, code, "取值不在可选范围内，请从列表中选择",
                       "not one of the allowed values: choose one from the list")
    if code == "bad_format" and field in _FORMATS:
        return Problem(field, code, *_FORMATS[field])
    if code == "mismatch" and field == "business_line":
        return Problem(field, code, "业务线与拨打的号码不符，请按来电号码选择业务线",
                       "the business line does not fit the number the caller dialled; choose the line of that number")
    if code == "mismatch" and field == "handling.region":
        return Problem(field, code, "承办地区代码与所选层级不符，请核对层级或代码",
                       "the region code does not fit the chosen level; check the level or the code")
    if code == "bad_type":
        return Problem(field, code, "取值的类型不对，请重新填写", "this value has the wrong type; fill it in again")
    return problem


def all_for_agents(problems: Iterable[Problem]) -> list[Problem]:
    return [for_agents(p) for p in problems]


def unstorable(errors: Sequence[tuple[str, str]]) -> list[Problem]:
    """The ticket service's :class:`~tickets.fields.BadChanges` (a field path and an English
    sentence for developers each) as problems an agent reads, by the kind of the field."""
    problems = []
    for path, message in errors:
        field = BY_PATH.get(path)
        kind = field.kind if field is not None else ""
        if path in _FORMATS:
            zh, en = _FORMATS[path]
        elif kind == "text" and field is not None and "at most" in message:
            zh, en = (f"内容过长，最多可保存 {field.max_len} 个字符",
                      f"too long: at most {field.max_len} characters can be kept")
        else:
            zh, en = "该取值无法保存，请检查后重新填写", "this value cannot be stored; check it and fill it in again"
        problems.append(Problem(path, "bad_value", zh, en))
    return problems
