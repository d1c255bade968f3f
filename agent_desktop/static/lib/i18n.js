// Every text the pages show comes from i18n/<language>.json (flat "dotted.keys").
// HTML marks translatable nodes with data-i18n (text), data-i18n-placeholder, data-i18n-title
// and data-i18n-aria-label; scripts call t("key", {param}) with "{param}" placeholders.
// zh-CN is the default; a choice made with the switch is remembered in localStorage and wins
// over the user's account setting, so an agent sharing a workstation keeps their language.

export const LANGUAGES = ["zh-CN", "en-US"];
export const DEFAULT_LANGUAGE = "zh-CN";
const STORAGE_KEY = "hotline.language";

const ATTRIBUTES = [
  ["data-i18n-placeholder", "placeholder"],
  ["data-i18n-title", "title"],
  ["data-i18n-aria-label", "aria-label"],
];

let current = DEFAULT_LANGUAGE;
let messages = {};
const listeners = new Set();

export function currentLanguage() {
  return current;
}

function storedLanguage() {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.includes(value) ? value : null;
  } catch {
    return null; // storage disabled by policy: fall back to the default
  }
}

/** The language to start with: the remembered choice, else the account's, else zh-CN. */
export function preferredLanguage(accountLanguage = null) {
  return storedLanguage() || (LANGUAGES.includes(accountLanguage) ? accountLanguage : DEFAULT_LANGUAGE);
}

async function loadMessages(language) {
  const url = new URL(`../i18n/${language}.json`, import.meta.url);
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  return response.json();
}

/** Switch the whole page to `language`; `remember` stores the choice for next time. */
export async function setLanguage(language, { remember = false } = {}) {
  if (!LANGUAGES.includes(language)) language = DEFAULT_LANGUAGE;
  messages = await loadMessages(language);
  current = language;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, language);
    } catch {
      // not remembered, still switched
    }
  }
  document.documentElement.lang = language;
  applyTranslations(document);
  for (const listener of listeners) listener(language);
}

/** The text of `key` with "{name}" replaced from `params`; the key itself when missing. */
export function t(key, params = {}) {
  const text = Object.hasOwn(messages, key) ? messages[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Jurisdiction levels may come as names or as the tree's numbers (core/jurisdictions.py Level).
const LEVELS = ["national", "province", "city", "county", "station"];

/** The label of an enumerated value (`enum.<kind>.<value>`); the raw value when unknown. */
export function tEnum(kind, value) {
  if (value === null || value === undefined || value === "") return "";
  if (kind === "level" && Number.isInteger(value)) value = LEVELS[value] ?? value;
  const key = `enum.${kind}.${value}`;
  return Object.hasOwn(messages, key) ? messages[key] : String(value);
}

export function hasText(key) {
  return Object.hasOwn(messages, key);
}

/** Translate every marked node inside `root` (also re-run after rendering new markup). */
export function applyTranslations(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const [data, attribute] of ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[${data}]`)) {
      node.setAttribute(attribute, t(node.getAttribute(data)));
    }
  }
}

/** Called after every language switch (pages re-render their dynamic parts). */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Wire a <select> of languages: shows the current one, switches and remembers on change. */
export function mountLanguageSwitch(select) {
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value, { remember: true }));
  onLanguageChange((language) => {
    select.value = language;
  });
}

// ---------------------------------------------------------------- formatting in the UI language

export function formatNumber(value, options = {}) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  return new Intl.NumberFormat(current, options).format(Number(value));
}

/** A share 0..1 as a percentage ("12.5%"). */
export function formatPercent(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(Number(fraction))) return "–";
  return new Intl.NumberFormat(current, { style: "percent", maximumFractionDigits: 1 }).format(Number(fraction));
}

/** Seconds as "m:ss" (or "h:mm:ss"): waits and time in a state. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  const total = Math.max(0, Math.floor(Number(seconds)));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** An RFC 3339 time in the viewer's time zone, date and time. */
export function formatDateTime(value) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(current, { dateStyle: "short", timeStyle: "short" }).format(date);
}

export function formatTime(value) {
  if (!value) return "–";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(current, { timeStyle: "medium" }).format(date);
}
