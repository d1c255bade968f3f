// The ticket form's DOM: built once from ticket-fields.js, then filled from a ticket, read
// back path by path, and marked with the problems the API reports next to each field.

import { problemMessage } from "../lib/api.js";
import { byTestId, el } from "../lib/dom.js";
import { applyTranslations, hasText, t } from "../lib/i18n.js";
import { ENUMS, FIELDS, PATHS, SECTIONS, normalDay } from "./ticket-fields.js";

const domId = (prefix, path) => `${prefix}-${path.replace(/\./g, "-")}`;

function buildInput(field) {
  const attributes = { id: domId("f", field.path), name: field.path, testid: `field-${field.path}`,
    "aria-describedby": domId("p", field.path), ...field.attrs };
  if (field.type === "select") {
    const options = [el("option", { value: "", "data-i18n": "common.choose" })];
    for (const value of ENUMS[field.enum]) {
      options.push(el("option", { value, "data-i18n": `enum.${field.enum}.${value}` }));
    }
    return el("select", attributes, options);
  }
  if (field.type === "textarea") return el("textarea", attributes);
  return el("input", { type: field.type, ...attributes });
}

function buildField(field) {
  const input = buildInput(field);
  const label = el("label", { for: input.id, "data-i18n": `ticketform.field.${field.path}` });
  const problem = el("p", { id: domId("p", field.path), class: "problem", testid: `problem-${field.path}`,
    "aria-live": "polite", hidden: true });
  const classes = ["field", field.wide ? "wide" : "", field.type === "checkbox" ? "check" : ""].join(" ").trim();
  const children = field.type === "checkbox" ? [input, label, problem] : [label, input, problem];
  return el("div", { class: classes, testid: `fieldbox-${field.path}` }, children);
}

function buildSection(section) {
  const problem = el("p", { class: "problem", testid: `problem-${section.id}`, hidden: true });
  return el("fieldset", { testid: `section-${section.id}` },
    el("legend", { "data-i18n": section.legend }),
    problem,
    el("div", { class: "fields" }, section.fields.map(buildField)));
}

export class TicketView {
  constructor(form) {
    this.form = form;
    form.replaceChildren(...SECTIONS.map(buildSection));
    applyTranslations(form);
    this.inputs = new Map(PATHS.map((path) => [path, byTestId(`field-${path}`, form)]));
    this.editable = true;
    for (const field of FIELDS) {
      const input = this.inputs.get(field.path);
      if (field.upper) {
        input.addEventListener("input", () => {
          const { selectionStart, selectionEnd } = input;
          input.value = input.value.toUpperCase();
          input.setSelectionRange(selectionStart, selectionEnd);
        });
      }
      if (field.day) {
        // Before the form's own "change" listener (registered later) reads the value.
        input.addEventListener("change", () => {
          input.value = normalDay(input.value);
        });
      }
    }
    this.applyRules();
  }

  input(path) {
    return this.inputs.get(path);
  }

  /** The value to send for `path`: null for an empty box, a boolean for a checkbox. */
  value(path) {
    const input = this.inputs.get(path);
    if (input.type === "checkbox") return input.checked;
    // An anonymous report carries no phone and no name (the platform's rule).
    if ((path === "caller.phone" || path === "caller.name") && this.isAnonymous()) return null;
    return input.value === "" ? null : input.value;
  }

  isAnonymous() {
    const box = this.inputs.get("caller.anonymous");
    return box.checked && this.inputs.get("case_type").value === "report";
  }

  /** Fill the inputs from a ticket's fields, leaving alone those in `keep` (being edited). */
  fill(readValue, keep = new Set()) {
    for (const [path, input] of this.inputs) {
      if (keep.has(path)) continue;
      const value = readValue(path);
      if (input.type === "checkbox") input.checked = value === true;
      else input.value = value === null || value === undefined ? "" : String(value);
    }
    this.applyRules();
  }

  /** Clear every input (a new ticket). */
  clear() {
    this.fill(() => null);
  }

  setEditable(editable) {
    this.editable = editable;
    for (const input of this.inputs.values()) input.disabled = !editable;
    this.applyRules();
  }

  /** Inputs that depend on others: anonymity (reports only), the station number (stations only). */
  applyRules() {
    const isReport = this.inputs.get("case_type").value === "report";
    byTestId("fieldbox-caller.anonymous", this.form).hidden = !isReport;
    const anonymous = this.isAnonymous();
    for (const path of ["caller.phone", "caller.name"]) {
      this.inputs.get(path).disabled = !this.editable || anonymous;
    }
    const station = this.inputs.get("handling.level").value === "station";
    byTestId("fieldbox-handling.station", this.form).hidden = !station && !this.inputs.get("handling.station").value;
  }

  /**
   * Show problems: each next to its field (or its section, for a problem about a whole group
   * such as "respondent"); the rest in the list under the form. Returns how many were shown.
   */
  showProblems(problems) {
    const byPath = new Map();
    const others = [];
    for (const problem of problems) {
      const path = problem.field || "";
      const target = this.inputs.has(path) ? `problem-${path}` : this.sectionOf(path);
      if (target) {
        if (!byPath.has(target)) byPath.set(target, []);
        byPath.get(target).push(problem);
      } else {
        others.push(problem);
      }
    }
    for (const node of this.form.querySelectorAll(".problem[data-testid^='problem-']")) {
      const list = byPath.get(node.dataset.testid) || [];
      node.textContent = list.map(problemMessage).join(" ");
      node.hidden = list.length === 0;
    }
    for (const [path, input] of this.inputs) {
      if (byPath.has(`problem-${path}`)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    return others;
  }

  sectionOf(path) {
    const group = path.split(/[.[]/, 1)[0];
    return SECTIONS.some((section) => section.id === group) ? `problem-${group}` : null;
  }
}

/** The name of a field or group of the form in words ("" when the form has none for it). */
export function fieldLabel(path) {
  if (!path) return "";
  if (hasText(`ticketform.field.${path}`)) return t(`ticketform.field.${path}`);
  const group = path.split(/[.[]/, 1)[0];
  return hasText(`ticketform.section.${group}`) ? t(`ticketform.section.${group}`) : "";
}

/** The list under the form: problems that belong to no field of the form (named in words). */
export function renderOtherProblems(list, problems) {
  list.replaceChildren(...problems.map((problem) => {
    const label = fieldLabel(problem.field);
    return el("li", { dataset: { field: problem.field || "" } },
      label ? t("ticketform.problem_of", { field: label, message: problemMessage(problem) }) : problemMessage(problem));
  }));
}

export function problemsSummary(count) {
  return count === 0 ? t("ticketform.no_problems") : t("ticketform.problem_count", { count });
}
