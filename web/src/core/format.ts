/** Formatting helpers shared by the components and the dashboard. */

// ITU-T E.164 country codes of two digits; 1 and 7 have one; the rest have three.
const TWO_DIGIT = new Set([
  "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
  "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
  "86", "90", "91", "92", "93", "94", "95", "98",
]);

/** The country code of an international number given as digits. */
export function countryCode(digits: string): string {
  if (digits.startsWith("1") || digits.startsWith("7")) return digits.slice(0, 1);
  if (TWO_DIGIT.has(digits.slice(0, 2))) return digits.slice(0, 2);
  return digits.slice(0, 3);
}

/** `27821231234` → `+27 **** 1234`. Anything without enough digits → `****`. */
export function maskPhone(phone: string | null | undefined): string | null {
  if (!phone) return null;
  const digits = phone.replace(/\D/g, "");
  if (digits.length < 7) return "****";
  return `+${countryCode(digits)} **** ${digits.slice(-4)}`;
}

/** `27821231234` → `+27821231234`. */
export function formatPhone(phone: string | null | undefined): string | null {
  if (!phone) return null;
  const digits = phone.replace(/\D/g, "");
  return digits ? `+${digits}` : phone;
}

/** "just now", "5 min ago", "3 h ago", "2 days ago" (or "in 5 s" for the future). */
export function formatRelative(d: Date | string | null | undefined, now: number = Date.now()): string {
  if (!d) return "never";
  const t = typeof d === "string" ? new Date(d).getTime() : d.getTime();
  if (Number.isNaN(t)) return "unknown";
  const s = Math.round((now - t) / 1000);
  const abs = Math.abs(s);
  let text: string;
  if (abs < 10) return "just now";
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)} h`;
  else {
    const days = Math.floor(abs / 86400);
    text = `${days} day${days === 1 ? "" : "s"}`;
  }
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

/** A full local date and time, for titles and tables. */
export function formatDateTime(d: Date | string | null | undefined): string {
  if (!d) return "never";
  const date = typeof d === "string" ? new Date(d) : d;
  if (Number.isNaN(date.getTime())) return "unknown";
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** `qr_pending` → "waiting for QR scan", etc. */
export function describeConnectionStatus(s: string | null | undefined): string {
  switch (s) {
    case "connected":
      return "connected";
    case "connecting":
      return "connecting";
    case "qr_pending":
      return "waiting for QR scan";
    case "disconnected":
      return "disconnected";
    case "logged_out":
      return "logged out";
    default:
      return "unknown";
  }
}

/**
 * What a recovery attempt's result means, for its mark: "good" (it connected, the probe was answered),
 * "bad" (it failed, was held back by the limit, or the credentials need a person), "neutral" (begun, or the
 * network was down: not counted against the session).
 */
export function attemptOutcome(result: string): "good" | "bad" | "neutral" {
  if (result === "connected" || result === "ok" || result === "success" || result === "succeeded") return "good";
  if (result === "started" || result === "unreachable") return "neutral";
  return "bad";
}
