// Cron expressions as the schedules API accepts them (croniter's syntax: five fields, or six with
// seconds last), parsed in the browser so the schedule form can show the next runs in a time zone
// before anything is saved. The server stays the judge: it also refuses expressions that run too
// often, and its next_run_at is what a saved schedule shows.
//
// Supported: *, ?, numbers, ranges a-b, steps */s a-b/s a/s, lists, month and weekday names
// (jan..dec, sun..sat), weekday 7 as Sunday. Not previewed (parse() says so): croniter's L, W and
// # forms, and its random R and hashed H tokens (which the API refuses).
//
// Day of month and day of week combine as in cron and croniter: when both are restricted a day
// matches either; when one is "*" only the other counts. Across daylight-saving changes it follows
// croniter: local times skipped when clocks go forward run once, at the jump; a repeated hour runs
// at both of its occurrences.

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, base: 1 },
  { name: "day of week", min: 0, max: 7, names: WEEKDAYS, base: 0 },
  { name: "second", min: 0, max: 59 },
];
// How far ahead to look for runs: enough for six runs of a leap day (29 February), 2100 skipped.
const SEARCH_DAYS = 366 * 32;
const DAY_MS = 86_400_000;

/** A cron expression the browser cannot read; its message says which field and why. */
export class CronError extends Error {}

function value(token, field) {
  const lower = token.toLowerCase();
  if (field.names && field.names.includes(lower)) return field.names.indexOf(lower) + field.base;
  if (!/^\d+$/.test(token)) throw new CronError(`"${token}" is not a valid ${field.name}`);
  const number = Number(token);
  if (number < field.min || number > field.max) {
    throw new CronError(`${field.name} must be between ${field.min} and ${field.max}, not ${number}`);
  }
  return number;
}

function expandPart(part, field) {
  if (/[LW#]/i.test(part.replace(/jul|wed/gi, ""))) {
    throw new CronError(`"${part}" (L, W or #) cannot be previewed here; the server computes its runs`);
  }
  const [range, stepText, extra] = part.split("/");
  if (extra !== undefined || range === "") throw new CronError(`"${part}" is not a valid ${field.name}`);
  const step = stepText === undefined ? 1 : Number(stepText);
  if (!Number.isInteger(step) || step < 1 || !/^\d+$/.test(stepText ?? "1")) {
    throw new CronError(`"${part}" has an invalid step`);
  }
  // Sunday is 0 and 7: a whole week, or a step up to its end, stops at Saturday.
  const last = field.name === "day of week" ? 6 : field.max;
  let low;
  let high;
  if (range === "*" || range === "?") {
    [low, high] = [field.min, last];
  } else if (range.includes("-")) {
    const bounds = range.split("-");
    if (bounds.length !== 2) throw new CronError(`"${part}" is not a valid ${field.name}`);
    [low, high] = bounds.map((bound) => value(bound, field));
  } else {
    low = value(range, field);
    high = stepText === undefined ? low : last;
  }
  if (low > high) throw new CronError(`"${part}": the range runs backwards`);
  const values = [];
  for (let v = low; v <= high; v += step) values.push(v);
  return values;
}

function expandField(text, field) {
  const values = new Set();
  for (const part of text.split(",")) {
    for (const v of expandPart(part, field)) values.add(field.name === "day of week" && v === 7 ? 0 : v);
  }
  return [...values].sort((a, b) => a - b);
}

/**
 * Parse an expression; return {minutes, hours, days, months, weekdays, seconds, dayOr} (sorted
 * arrays of the values each field allows) or throw CronError.
 */
export function parseCron(expression) {
  const parts = String(expression).trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new CronError("a cron expression has 5 fields (minute hour day month weekday), or 6 with seconds last");
  }
  for (const part of parts) {
    if (/[RH]/i.test(part.replace(/jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat/gi, ""))) {
      throw new CronError(`"${part}": random (R) and hashed (H) times are not accepted`);
    }
  }
  const [minutes, hours, days, months, weekdays] = parts.slice(0, 5).map((text, i) => expandField(text, FIELDS[i]));
  const seconds = parts.length === 6 ? expandField(parts[5], FIELDS[5]) : [0];
  const dayRestricted = days.length < 31;
  const weekdayRestricted = weekdays.length < 7;
  return { minutes, hours, days, months, weekdays, seconds, dayRestricted, weekdayRestricted };
}

const partFormats = new Map();

function partsFormat(zone) {
  if (!partFormats.has(zone)) {
    partFormats.set(
      zone,
      new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      }),
    );
  }
  return partFormats.get(zone);
}

/** Return the wall-clock time in the zone at instant t (ms) as if it were UTC (ms). */
function wallClock(t, zone) {
  const parts = Object.fromEntries(partsFormat(zone).formatToParts(new Date(t)).map((p) => [p.type, p.value]));
  return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
}

/**
 * Return the instants (ms) at which the zone's clocks show this wall-clock time: one; two when the
 * clocks go back and the hour repeats; and when they go forward past it, the instant they jump (as
 * croniter does, so every skipped time runs once, at the jump).
 */
function instantsOf(wall, zone) {
  // The offsets in force a day either side: one of them is the offset at that wall time.
  const before = wallClock(wall - DAY_MS, zone) - (wall - DAY_MS);
  const after = wallClock(wall + DAY_MS, zone) - (wall + DAY_MS);
  const found = [...new Set([wall - before, wall - after])].filter((t) => wallClock(t, zone) === wall);
  if (found.length) return found;
  // In the gap: the first second whose wall clock is past this one.
  let low = wall - Math.max(before, after);
  let high = wall - Math.min(before, after);
  while (high - low > 1000) {
    const middle = low + Math.floor((high - low) / 2000) * 1000;
    if (wallClock(middle, zone) > wall) high = middle;
    else low = middle;
  }
  return [high];
}

function dayMatches(cron, date) {
  const dayOk = cron.days.includes(date.getUTCDate());
  const weekdayOk = cron.weekdays.includes(date.getUTCDay());
  if (cron.dayRestricted && cron.weekdayRestricted) return dayOk || weekdayOk;
  return dayOk && weekdayOk;
}

/** Return the next `count` run times (Date) strictly after `after`, computed in the IANA `zone`. */
export function nextRuns(cron, zone, after = new Date(), count = 5) {
  const runs = [];
  const afterMs = after.getTime();
  const startWall = wallClock(afterMs, zone);
  let day = Math.floor(startWall / DAY_MS) * DAY_MS;
  for (let i = 0; i < SEARCH_DAYS && runs.length < count; i += 1, day += DAY_MS) {
    const date = new Date(day);
    if (!cron.months.includes(date.getUTCMonth() + 1) || !dayMatches(cron, date)) continue;
    // A day's instants, in order and each once (a repeated hour gives two, a skipped one shares one).
    const instants = new Set();
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        for (const second of cron.seconds) {
          const wall = day + ((hour * 60 + minute) * 60 + second) * 1000;
          if (wall + DAY_MS < startWall) continue;
          for (const instant of instantsOf(wall, zone)) if (instant > afterMs) instants.add(instant);
        }
      }
    }
    for (const instant of [...instants].sort((a, b) => a - b)) {
      runs.push(new Date(instant));
      if (runs.length === count) break;
    }
  }
  return runs;
}

/** Return the zones the browser knows, UTC first. */
export function timeZones() {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return ["UTC", ...known.filter((zone) => zone !== "UTC")];
}

/** Return a run time as the zone's local date and time, with the zone's short name. */
export function formatInZone(date, zone) {
  return new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: "full", timeStyle: "short" }).format(date) + ` (${zone})`;
}
