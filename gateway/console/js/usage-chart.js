// Usage and cost per day: the days' figures from the stats route (per UTC day), drawn as an inline
// SVG bar chart (built with DOM calls: the CSP allows no inline markup or style), with the same
// figures as a table for screen readers.

import { formatCost, formatTokens, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
// The drawing is as wide as the space it is given (within these bounds), so its 12 px text stays
// 12 px on a phone instead of shrinking with a fixed drawing scaled down.
const MIN_WIDTH = 300;
const MAX_WIDTH = 960;
const HEIGHT = 240;
const MARGIN = { top: 16, right: 12, bottom: 36, left: 64 };

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

/**
 * Return the chart's days from GET /api/v1/stats's `by_day` (UTC dates, oldest first, every date of
 * the window): the last `days` of them, each {day, tasks, tokens, cost}.
 */
export function statsDays(byDay, days) {
  return byDay.slice(-days).map((entry) => ({ day: entry.date, tasks: entry.tasks, tokens: entry.tokens, cost: entry.cost_usd }));
}

/** Return a round upper bound for the axis (1, 2 or 5 times a power of ten) at least `value`. */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((bound) => bound >= value);
}

const shortDay = (day) =>
  new Date(`${day}T12:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

// Axis labels keep two significant digits, so a day's cost of a fraction of a cent still reads.
const axisCost = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumSignificantDigits: 2 });
const axisCount = new Intl.NumberFormat(undefined, { notation: "compact", maximumSignificantDigits: 2 });

/** The measures a chart can show: each day's figure and how the axis writes it. */
export const MEASURES = {
  cost: { value: (entry) => entry.cost, axis: (v) => axisCost.format(v) },
  tokens: { value: (entry) => entry.tokens, axis: (v) => axisCount.format(v) },
};

/**
 * Return a bar chart of one measure per day, as wide as `available` pixels (hidden from screen readers,
 * which read the table).
 */
export function dayChart(days, measure, available) {
  const width = Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, available || MAX_WIDTH)));
  const top = niceMax(Math.max(...days.map(measure.value)));
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const slot = plotWidth / days.length;
  // A day label needs about 56 px.
  const labelEvery = Math.ceil(days.length / Math.max(2, Math.floor(plotWidth / 56)));
  const chart = svg("svg", {
    class: "usage-chart",
    viewBox: `0 0 ${width} ${HEIGHT}`,
    width: "100%",
    "aria-hidden": "true",
    focusable: "false",
    "font-size": "12",
    fill: "currentColor",
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = MARGIN.top + plotHeight * (1 - fraction);
    chart.append(
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, stroke: "currentColor", "stroke-opacity": "0.3" }),
      svg("text", { x: MARGIN.left - 6, y: y + 4, "text-anchor": "end" }, measure.axis(top * fraction)),
    );
  }
  days.forEach((entry, i) => {
    const barHeight = (measure.value(entry) / top) * plotHeight;
    const x = MARGIN.left + i * slot;
    chart.append(
      svg(
        "rect",
        { class: "usage-bar", x: x + slot * 0.15, y: MARGIN.top + plotHeight - barHeight, width: slot * 0.7, height: barHeight },
        svg("title", {}, `${entry.day}: ${formatCost(entry.cost)}, ${formatTokens(entry.tokens)} tokens, ${entry.tasks} tasks`),
      ),
    );
    // Counted back from today, which is always labelled.
    if ((days.length - 1 - i) % labelEvery === 0) {
      chart.append(svg("text", { x: x + slot / 2, y: HEIGHT - MARGIN.bottom + 18, "text-anchor": "middle" }, shortDay(entry.day)));
    }
  });
  return chart;
}

/** Return the figures of the chart as a table, read by screen readers in place of the chart. */
export function usageTable(days) {
  const rows = days.map((entry) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, entry.day),
      h("td", {}, String(entry.tasks)),
      h("td", {}, formatTokens(entry.tokens)),
      h("td", {}, formatCost(entry.cost)),
    ),
  );
  // The box is hidden, not the table: .data-table's width would override .visually-hidden's.
  return h(
    "div",
    { class: "visually-hidden" },
    h(
      "table",
      { class: "data-table" },
      h("caption", {}, "Usage and cost per day"),
      h("thead", {}, h("tr", {}, ["Day", "Tasks", "Tokens", "Cost"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows),
    ),
  );
}
