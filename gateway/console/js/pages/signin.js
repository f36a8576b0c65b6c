// Sign in: with email and password (access and refresh tokens) or with an API key.

import { signInWithKey, signInWithPassword } from "../auth.js";
import { h } from "../dom.js";

/** Return a form whose submit runs action(values); its errors are shown in the form, announced. */
function signInForm({ legend, fields, submitLabel, action }) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button-primary" }, submitLabel);
  const inputs = fields.map((field) => h("input", { id: field.id, name: field.id, required: true, ...field.attrs }));
  const form = h(
    "form",
    { class: "card signin-form" },
    h("h2", { id: legend.id }, legend.text),
    fields.map((field, i) => h("div", { class: "field" }, h("label", { for: field.id }, field.label), inputs[i])),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await action(...inputs.map((input) => input.value));
    } catch (ex) {
      error.textContent = ex.message || "Signing in failed.";
      error.hidden = false;
      inputs[inputs.length - 1].focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export default {
  title: "Sign in",
  render(root) {
    root.append(
      h("h1", {}, "Sign in"),
      h(
        "div",
        { class: "signin-forms" },
        signInForm({
          legend: { id: "signin-password-title", text: "With your email and password" },
          fields: [
            { id: "signin-email", label: "Email", attrs: { type: "email", autocomplete: "username" } },
            { id: "signin-password", label: "Password", attrs: { type: "password", autocomplete: "current-password" } },
          ],
          submitLabel: "Sign in",
          action: (email, password) => signInWithPassword(email.trim(), password),
        }),
        signInForm({
          legend: { id: "signin-key-title", text: "With an API key" },
          fields: [{ id: "signin-key", label: "API key", attrs: { type: "password", autocomplete: "off", spellcheck: "false" } }],
          submitLabel: "Use API key",
          action: (key) => signInWithKey(key),
        }),
      ),
      h(
        "p",
        { class: "hint" },
        "Your credential is kept in this browser tab only and is forgotten when the tab closes.",
      ),
    );
  },
};
