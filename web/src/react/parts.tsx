import { useEffect, useRef, useState, type MouseEvent, type ReactNode } from "react";
import { explainError, UNKNOWN_ERROR } from "../core/format";
import type { ReconnectResult } from "../core/types";
import { useWhatsAppStatus } from "./context";

/** The tooltip (and accessible name) of the dot. */
export function dotTooltip(connected: boolean): string {
  return connected ? "WhatsApp: Connected" : "WhatsApp: Disconnected - Click for details";
}

/** Pulses for `ms` after `value` changes from one known value to another (null = not known yet). */
export function usePulse(value: string | null, ms = 1200): boolean {
  const [pulse, setPulse] = useState(false);
  const prev = useRef<string | null>(value);
  useEffect(() => {
    const before = prev.current;
    prev.current = value;
    if (before === null || value === null || before === value) return;
    setPulse(true);
    const t = setTimeout(() => setPulse(false), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return pulse;
}

/** A text for screen readers, set when a known status changes (null = not known yet). */
export function useAnnouncement(text: string | null): string {
  const [said, setSaid] = useState("");
  const prev = useRef<string | null>(text);
  useEffect(() => {
    const before = prev.current;
    prev.current = text;
    if (before === null || text === null || before === text) return;
    setSaid(text);
  }, [text]);
  return said;
}

export function StatusIcon({ connected, unknown }: { connected: boolean; unknown?: boolean }) {
  // Shape as well as colour: a check mark, a cross, or a dash.
  return (
    <svg
      className={`wa-icon wa-icon--${unknown ? "unknown" : connected ? "ok" : "bad"}`}
      width="16"
      height="16"
      viewBox="0 0 16 16"
      aria-hidden="true"
      focusable="false"
    >
      <circle cx="8" cy="8" r="8" />
      {unknown ? (
        <path d="M4.5 8h7" />
      ) : connected ? (
        <path d="M4.5 8.3l2.3 2.3 4.7-5" />
      ) : (
        <path d="M5.2 5.2l5.6 5.6M10.8 5.2l-5.6 5.6" />
      )}
    </svg>
  );
}

export function Dot({ variant, pulse }: { variant: "ok" | "bad" | "unknown"; pulse?: boolean }) {
  return <span className={`wa-dot wa-dot--${variant}${pulse ? " wa-dot--pulse" : ""}`} aria-hidden="true" />;
}

export function dotVariant(s: { status: string; unknown: boolean }): "ok" | "bad" | "unknown" {
  return s.unknown ? "unknown" : s.status === "connected" ? "ok" : "bad";
}

export function Spinner() {
  return <span className="wa-spinner" aria-hidden="true" />;
}

/** A link that uses the provider's `onNavigate` when there is one. */
export function NavLink({ href, children, className, testId }: { href: string; children: ReactNode; className?: string; testId?: string }) {
  const { onNavigate } = useWhatsAppStatus();
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    if (!onNavigate || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    onNavigate(href);
  };
  return (
    <a href={href} className={className} onClick={click} data-testid={testId}>
      {children}
    </a>
  );
}

/** A reconnect button: a spinner while the attempt runs, then its outcome. */
export function ReconnectButton({ label, testId }: { label: string; testId: string }) {
  const { reconnect, isReconnecting } = useWhatsAppStatus();
  const [outcome, setOutcome] = useState<ReconnectResult | null>(null);
  const [mine, setMine] = useState(false);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const running = mine || isReconnecting;
  const click = async () => {
    setOutcome(null);
    setMine(true);
    const r = await reconnect();
    if (!mounted.current) return;
    setMine(false);
    setOutcome(r);
  };
  return (
    <div className="wa-reconnect">
      <button
        type="button"
        className="wa-button"
        data-testid={testId}
        onClick={click}
        disabled={running}
        aria-busy={running}
      >
        {running ? <Spinner /> : null}
        {running ? "Reconnecting…" : label}
      </button>
      <span role="status" aria-live="polite" className="wa-reconnect__outcome" data-testid={`${testId}-outcome`}>
        {outcome ? (
          outcome.success ? (
            `Reconnected: ${outcome.message}`
          ) : (
            <>
              Reconnect failed. <ErrorText error={outcome.message} />
            </>
          )
        ) : (
          ""
        )}
      </span>
    </div>
  );
}

/** An error in a plain sentence; the server's own text one click away (a native disclosure, keyboard-ready). */
export function ErrorText({
  error,
  testId,
  className,
  rawIfUnknown = false,
}: {
  error: string | null | undefined;
  testId?: string;
  className?: string;
  /** A text no rule knows is shown as it is (for answers to a form, which are sentences already). */
  rawIfUnknown?: boolean;
}) {
  let e = explainError(error);
  if (!e) return null;
  if (rawIfUnknown && e.summary === UNKNOWN_ERROR) e = { summary: e.detail ?? e.summary, detail: null };
  return (
    <span className={`wa-error${className ? ` ${className}` : ""}`} data-testid={testId}>
      <span className="wa-error__summary">{e.summary}</span>
      {e.detail ? (
        <details className="wa-error__details">
          <summary>Details</summary>
          <code>{e.detail}</code>
        </details>
      ) : null}
    </span>
  );
}
