// The caller's way through the IVR in words: the call card's menu path comes as the IVR records
// its steps ("main_menu:1:complaint", "ask_city:keyed:found", "transfer:queue:330100:general"),
// and the agent reads "主菜单 › 1 投诉" / "Main menu › 1 Complaint". A step of a kind this page
// does not know yet is named by its menu only, never shown raw.

import { hasText, t, tEnum } from "../lib/i18n.js";

const KEY = /^[0-9*#]$/;
const REGION = /^\d{6}(?:-\d+)?$/;

function menuName(menu) {
  return hasText(`menu.name.${menu}`) ? t(`menu.name.${menu}`) : t("menu.name.other");
}

function choiceWords(choice) {
  return hasText(`enum.menu_choice.${choice}`) ? tEnum("menu_choice", choice) : t("menu.result.other_choice");
}

function mainMenu(how, result) {
  if (how === "timeout") return t("menu.result.no_input");
  if (how === "speech") {
    if (result === "timeout") return t("menu.result.no_input");
    if (result === "no_match" || !result) return t("menu.result.speech_no_match");
    return t("menu.result.said", { choice: choiceWords(result) });
  }
  if (KEY.test(how || "")) {
    if (result === "no_match" || !result) return t("menu.result.key_no_match", { key: how });
    return t("menu.result.key", { key: how, choice: choiceWords(result) });
  }
  return "";
}

function askCity(how, result) {
  if (how === "keyed") return t(result === "found" ? "menu.result.city_keyed" : "menu.result.city_not_found");
  if (how === "speech") {
    if (REGION.test(result || "")) return t("menu.result.city_said", { code: result });
    return t(result === "timeout" ? "menu.result.no_input" : "menu.result.city_not_found");
  }
  return "";
}

function transfer(kind, target, line) {
  if (kind === "queue") {
    return t("menu.result.to_queue", { jurisdiction: REGION.test(target || "") ? target : "",
      line: tEnum("business_line", line) || "" }).trim();
  }
  if (kind === "agent") return t("menu.result.to_agent", { agent: /^[\w-]{1,32}$/.test(target || "") ? target : "" });
  return "";
}

/** One step in words: "主菜单 › 1 投诉". */
export function menuStepWords(step) {
  const [menu, ...rest] = String(step).split(":");
  let what = "";
  if (menu === "main_menu") what = mainMenu(rest[0], rest[1]);
  else if (menu === "ask_city") what = askCity(rest[0], rest[1]);
  else if (menu === "in_queue" && rest[0] === "callback") what = t("menu.result.callback");
  else if (menu === "transfer") what = transfer(rest[0], rest[1], rest[2]);
  const name = menuName(menu);
  return what ? t("menu.step", { menu: name, what }) : name;
}

/** The whole path, step after step. */
export function menuPathWords(steps) {
  return (steps || []).map(menuStepWords).join(" → ");
}
