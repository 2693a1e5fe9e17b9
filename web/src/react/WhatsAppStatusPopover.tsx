import { useEffect, useId, useRef, type RefObject } from "react";
import { formatDateTime, formatRelative, maskPhone } from "../core/format";
import { useWhatsAppStatus } from "./context";
import { ErrorText, NavLink, ReconnectButton, StatusIcon } from "./parts";

export interface WhatsAppStatusPopoverProps {
  /** Called with the reason: Escape and the close button should give focus back to the opener. */
  onClose?: (reason: "escape" | "button" | "outside") => void;
  /** The element that opened it (clicks on it do not count as outside). */
  anchorRef?: RefObject<HTMLElement | null>;
  id?: string;
  className?: string;
  /** Overrides the provider's settings link. */
  settingsHref?: string;
  /** Moves focus into the popover when it opens (default true). */
  autoFocus?: boolean;
}

/** The details of the WhatsApp status: status, phone, last connection; when red, the error and "Try Reconnect". */
export function WhatsAppStatusPopover(props: WhatsAppStatusPopoverProps) {
  const s = useWhatsAppStatus();
  const { onClose, anchorRef, className, autoFocus = true } = props;
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  const ownId = useId();
  const id = props.id ?? ownId;
  const connected = s.status === "connected";

  useEffect(() => {
    if (autoFocus) ref.current?.focus();
  }, [autoFocus]);

  useEffect(() => {
    if (!onClose) return;
    const key = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        onClose("escape");
      }
    };
    const down = (e: MouseEvent) => {
      const t = e.target as Node;
      if (ref.current?.contains(t) || anchorRef?.current?.contains(t)) return;
      onClose("outside");
    };
    document.addEventListener("keydown", key);
    document.addEventListener("mousedown", down);
    return () => {
      document.removeEventListener("keydown", key);
      document.removeEventListener("mousedown", down);
    };
  }, [onClose, anchorRef]);

  return (
    <div
      ref={ref}
      id={id}
      role="dialog"
      aria-modal="false"
      aria-labelledby={titleId}
      tabIndex={-1}
      className={`wa-popover${className ? ` ${className}` : ""}`}
      data-testid="wa-status-popover"
      data-status={s.status}
    >
      <div className="wa-popover__head">
        <StatusIcon connected={connected} unknown={s.unknown} />
        <strong id={titleId} role="status" aria-live="polite">
          WhatsApp: {s.statusText}
        </strong>
        {onClose ? (
          <button type="button" className="wa-close" aria-label="Close" onClick={() => onClose("button")}>
            ×
          </button>
        ) : null}
      </div>
      {s.sessionName ? (
        <p className="wa-popover__row" data-testid="wa-status-session">
          <span className="wa-muted">Session:</span> {s.sessionName}
        </p>
      ) : null}
      {connected && s.phoneNumber ? (
        <p className="wa-popover__row">
          <span className="wa-muted">Phone:</span> {maskPhone(s.phoneNumber)}
        </p>
      ) : null}
      <p className="wa-popover__row">
        <span className="wa-muted">Last connected:</span>{" "}
        {s.lastConnectedAt ? (
          <time dateTime={s.lastConnectedAt.toISOString()} title={formatDateTime(s.lastConnectedAt)}>
            {formatRelative(s.lastConnectedAt)}
          </time>
        ) : (
          "never"
        )}
      </p>
      {s.noSession ? (
        <>
          <p className="wa-popover__row" data-testid="wa-status-empty">
            No WhatsApp session has been added yet.
          </p>
          <NavLink href={s.addSessionHref} className="wa-button" testId="wa-popover-add-session">
            Add session
          </NavLink>
        </>
      ) : !connected ? (
        <>
          {s.lastError ? (
            <div className="wa-popover__error" data-testid="wa-status-error">
              <span aria-hidden="true">⚠ </span>
              <ErrorText error={s.lastError} />
            </div>
          ) : null}
          <ReconnectButton label="Try Reconnect" testId="wa-popover-reconnect" />
        </>
      ) : null}
      <p className="wa-popover__foot">
        <NavLink href={props.settingsHref ?? s.settingsHref} testId="wa-popover-settings">
          WhatsApp settings
        </NavLink>
      </p>
    </div>
  );
}
