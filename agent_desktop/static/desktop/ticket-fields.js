// The ticket form's fields, by the national platform's Case paths (national/contract.py): the
// path is what the API takes and what its problems name, so each input and the problem shown
// next to it are found by path (data-testid "field-<path>" and "problem-<path>").

export const ENUMS = {
  case_type: ["complaint", "report", "consultation"],
  business_line: ["general", "quality", "food_drug", "price", "intellectual_property"],
  demand: ["refund", "exchange", "repair", "compensation", "apology", "investigate", "information", "other"],
  subject_kind: ["goods", "service"],
  level: ["national", "province", "city", "county", "station"],
};

/**
 * Sections of the form. A field: path, input type (select, text, tel, checkbox, textarea), enum
 * (the ENUMS list of a select), wide (spans the row), day (a calendar day, written
 * year-month-day), attrs (extra input attributes).
 */
export const SECTIONS = [
  {
    id: "case",
    legend: "ticketform.section.case",
    fields: [
      { path: "case_type", type: "select", enum: "case_type" },
      { path: "business_line", type: "select", enum: "business_line" },
      { path: "demand", type: "select", enum: "demand" },
    ],
  },
  {
    id: "caller",
    legend: "ticketform.section.caller",
    fields: [
      { path: "caller.phone", type: "tel", attrs: { autocomplete: "off", inputmode: "tel" } },
      { path: "caller.name", type: "text", attrs: { autocomplete: "off" } },
      // Only a report may be anonymous (the platform's rule): shown for reports only.
      { path: "caller.anonymous", type: "checkbox", onlyFor: "report" },
    ],
  },
  {
    id: "respondent",
    legend: "ticketform.section.respondent",
    fields: [
      { path: "respondent.name", type: "text" },
      {
        path: "respondent.credit_code",
        type: "text",
        upper: true,
        attrs: { maxlength: "18", autocomplete: "off", spellcheck: "false", placeholder: "91330106MA27U8KJ4R" },
      },
      { path: "respondent.region", type: "text", attrs: { inputmode: "numeric", maxlength: "6", placeholder: "330106" } },
      { path: "respondent.address", type: "text", wide: true },
    ],
  },
  {
    id: "subject",
    legend: "ticketform.section.subject",
    fields: [
      { path: "subject.kind", type: "select", enum: "subject_kind" },
      { path: "subject.category", type: "text" },
      { path: "subject.amount", type: "text", attrs: { inputmode: "decimal", placeholder: "199.00" } },
      // Typed as text, not <input type="date">: the browser would show its own locale's order
      // (mm/dd/yyyy); the desk writes days in Chinese order, year-month-day.
      {
        path: "subject.purchased_on",
        type: "text",
        day: true,
        attrs: { inputmode: "numeric", maxlength: "10", autocomplete: "off",
          "data-i18n-placeholder": "ticketform.placeholder.day" },
      },
    ],
  },
  {
    id: "content",
    legend: "ticketform.section.content",
    fields: [{ path: "summary", type: "textarea", wide: true, attrs: { rows: "5", maxlength: "2000" } }],
  },
  {
    id: "handling",
    legend: "ticketform.section.handling",
    fields: [
      { path: "handling.region", type: "text", attrs: { inputmode: "numeric", maxlength: "6", placeholder: "330106" } },
      { path: "handling.level", type: "select", enum: "level" },
      { path: "handling.station", type: "text", attrs: { inputmode: "numeric", maxlength: "3", placeholder: "001" } },
    ],
  },
];

export const FIELDS = SECTIONS.flatMap((section) => section.fields);
export const PATHS = FIELDS.map((field) => field.path);

/** A value of the ticket's `fields`, whether the API nests them ({caller: {phone}}) or not. */
export function readPath(fields, path) {
  if (!fields) return undefined;
  if (Object.hasOwn(fields, path)) return fields[path];
  let node = fields;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/** [[path, value], ...] as the Case shape the API takes: {"caller": {"phone": ...}}. */
export function nest(entries) {
  const doc = {};
  for (const [path, value] of entries) {
    const parts = path.split(".");
    let node = doc;
    for (const part of parts.slice(0, -1)) node = node[part] ??= {};
    node[parts[parts.length - 1]] = value;
  }
  return doc;
}

/** A day as typed ("2026/3/5", "2026.03.05", "2026-3-5") in the platform's form, 2026-03-05;
 * anything else as it is (the platform's rules then say what is wrong with it). */
export function normalDay(text) {
  const found = /^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$/u.exec(text || "");
  if (!found) return text;
  return `${found[1]}-${found[2].padStart(2, "0")}-${found[3].padStart(2, "0")}`;
}
