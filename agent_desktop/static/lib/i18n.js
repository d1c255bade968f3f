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

// Times are China's, whatever the browser's time zone and locale: the centre, its callers, its
// case numbers and its legal deadlines all live in China time, and a ticket must read the same
// on every workstation. Dates are written in Chinese order in both languages: 2026-12-06 14:05.

export const CHINA_TIME_ZONE = "Asia/Shanghai";
const DAY_ONLY = /^\d{4}-\d{2}-\d{2}$/;

const chinaClock = new Intl.DateTimeFormat("en-US", {
  timeZone: CHINA_TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The parts of an instant in China time: {year, month, day, hour, minute, second}, zero-padded. */
export function chinaParts(value) {
  const date = toDate(value);
  if (!date) return null;
  const parts = {};
  for (const { type, value: text } of chinaClock.formatToParts(date)) parts[type] = text;
  if (parts.hour === "24") parts.hour = "00";
  return parts;
}

/** An instant (RFC 3339 text, a Date or milliseconds) as "2026-12-06 14:05", China time. */
export function formatDateTime(value) {
  if (!value && value !== 0) return "–";
  const p = chinaParts(value);
  if (!p) return String(value);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** The time of day of an instant as "14:05:09", China time. */
export function formatTime(value) {
  if (!value && value !== 0) return "–";
  const p = chinaParts(value);
  if (!p) return String(value);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** The time of day without seconds, "14:05", China time. */
export function formatClock(value) {
  if (!value && value !== 0) return "–";
  const p = chinaParts(value);
  if (!p) return String(value);
  return `${p.hour}:${p.minute}`;
}

/** A calendar day ("2026-12-06" as the API sends days) or the China-time day of an instant. */
export function formatDate(value) {
  if (!value && value !== 0) return "–";
  if (typeof value === "string" && DAY_ONLY.test(value)) return value;
  const p = chinaParts(value);
  if (!p) return String(value);
  return `${p.year}-${p.month}-${p.day}`;
}
