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

/** An error as a sentence for people, with the server's own text kept for whoever needs it. */
export interface ExplainedError {
  /** One plain sentence: what happened and, where there is one, what to do. */
  summary: string;
  /** The technical text as the server gave it (null when the summary already is that text). */
  detail: string | null;
}

// The first rule that matches wins: the specific causes before the general ones ("logged out (401)" before
// anything that merely mentions a status code). The patterns follow the texts wagate and browsers produce.
const ERROR_RULES: [RegExp, string][] = [
  // wagate itself, as the browser sees it.
  [/^server unreachable|failed to fetch|networkerror|load failed/i, "The wagate server cannot be reached."],
  [/missing or invalid api key|^unauthori[sz]ed/i, "You are signed out, or the API key is wrong."],
  [/^no (whatsapp )?session|there is no session/i, "No WhatsApp session has been added yet."],
  // A session's connection to WhatsApp.
  [/logged out|re-?authentication needed|pair the device again/i, "WhatsApp logged this device out. Pair it again to reconnect."],
  [/replaced \(440\)|another client took (this session )?over|conflict/i, "Another WhatsApp Web client took over this session."],
  [/temporary ban|banned/i, "WhatsApp has temporarily blocked this number."],
  [/client outdated|restart required|until the server is updated|downgrade/i, "WhatsApp asks for a newer version of wagate."],
  [/no credentials|not paired|pair it first/i, "This session is not paired yet. Show its QR code and scan it with WhatsApp on the phone."],
  [/sealed under key|credentials (are )?unusable|stored credentials|credentials hold no|credentials: /i, "The saved login for this session cannot be read. Check the server's secret key, or pair the device again."],
  [/recovery limit|breaker|reconnects are stopped/i, "Automatic reconnects are paused after too many failures. Reconnect by hand once the cause is fixed."],
  [/keepalive|no answer to presence|stopped half-way|not answered in time/i, "WhatsApp stopped answering, so the connection was dropped. wagate reconnects by itself."],
  [/login did not complete|handshake failed|login failure|cannot send the client hello/i, "The sign-in to WhatsApp did not complete. wagate tries again by itself."],
  [/\b5\d\d\b|service unavailable|transient|stream error|server ended the stream|stream:error/i, "WhatsApp's servers had a temporary problem. wagate tries again by itself."],
  [/refused|unreachable|timed? ?out|\bresolve|\bdns\b|network|\beconn|\behost|\benet|connection (lost|closed)|cannot start a connection/i, "The connection to WhatsApp was lost. wagate reconnects by itself."],
  [/pairing (failed|rejected)|pair-|unusable pairing/i, "Pairing did not complete. Show the QR code again and scan it with the phone."],
  [/database/i, "wagate cannot use its database right now."],
  [/switched off|auto-connect is off/i, "This session is switched off, so it does not connect by itself."],
];

/** The summary of a text no rule knows. */
export const UNKNOWN_ERROR = "Something went wrong.";

/** `"protocol violation: HTTP/1.1 503 Service Unavailable (transient 503)"` → a sentence, with the text as detail. */
export function explainError(raw: string | null | undefined): ExplainedError | null {
  if (!raw) return null;
  for (const [re, summary] of ERROR_RULES) if (re.test(raw)) return { summary, detail: raw };
  return { summary: UNKNOWN_ERROR, detail: raw };
}
