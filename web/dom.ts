/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * A few DOM helpers. Text from the network or the user only ever goes in
 * through `textContent` (never `innerHTML`), so a nick or a message cannot
 * become markup.
 *
 * @module
 */

type Child = Node | string | null | undefined | false;

/** Attributes: strings set as attributes, functions as `on*` listeners. */
type Attributes = Record<string, string | boolean | ((event: Event) => void) | undefined>;

/**
 * Creates an element with attributes and children (strings become text).
 *
 * @example
 * ```ts
 * h("button", { type: "button", onclick: () => send() }, "Send");
 * ```
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(name.replace(/^on/, ""), value);
    } else {
      element.setAttribute(name, value === true ? "" : value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** Replaces an element's children. @example `replaceChildren(list, ...items)` */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(
    ...children.filter((child): child is Node | string =>
      child !== null && child !== undefined && child !== false
    ),
  );
}

/** A labelled input, the label's text first. @example `field("Room", input)` */
export function field(label: string, input: HTMLElement, hint?: string): HTMLLabelElement {
  return h(
    "label",
    { class: "field" },
    h("span", {}, label),
    input,
    hint ? h("small", {}, hint) : null,
  );
}

/** The fingerprint in 4-character groups of two rows, as the command line shows it. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.split("-").slice(0, 2).join("-");
}
