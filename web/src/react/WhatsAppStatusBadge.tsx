import { useId, useState, type KeyboardEvent } from "react";
import { describeConnectionStatus, formatDateTime, formatRelative, maskPhone } from "../core/format";
import { useWhatsAppStatus } from "./context";
import { Dot, dotVariant, ErrorText, NavLink, ReconnectButton, useAnnouncement, usePulse } from "./parts";

export interface WhatsAppStatusBadgeProps {
  className?: string;
  /** Start expanded (default false). */
  defaultExpanded?: boolean;
  /** Overrides the provider's settings link. */
  settingsHref?: string;
}

/** For a sidebar footer: "WhatsApp Connected" / "WhatsApp Offline" (or "No WhatsApp session"); a click shows the details. */
export function WhatsAppStatusBadge({ className, defaultExpanded = false, settingsHref }: WhatsAppStatusBadgeProps) {
  const s = useWhatsAppStatus();
  const connected = s.status === "connected";
  const [expanded, setExpanded] = useState(defaultExpanded);
  const panelId = useId();
  const pulse = usePulse(s.unknown ? null : s.status);
  const label = connected ? "WhatsApp Connected" : s.noSession ? "No WhatsApp session" : "WhatsApp Offline";
  const announcement = useAnnouncement(s.unknown ? null : label);
  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "Escape" && expanded) {
      e.stopPropagation();
      setExpanded(false);
      (e.currentTarget.querySelector(".wa-badge__toggle") as HTMLElement | null)?.focus();
    }
  };
  // The session's own status only when it says more than the summary ("Disconnected (session logged out)").
  const own = s.connectionStatus ? describeConnectionStatus(s.connectionStatus) : null;
  const detail = s.unknown || !own || own === s.statusText.toLowerCase() ? s.statusText : `${s.statusText} (session ${own})`;

  return (
    <div
      className={`wa-badge wa-badge--${dotVariant(s)}${className ? ` ${className}` : ""}`}
      data-testid="wa-status-badge"
      data-status={s.status}
      onKeyDown={onKey}
    >
      <button
        type="button"
        className="wa-badge__toggle"
        aria-expanded={expanded}
        aria-controls={panelId}
        onClick={() => setExpanded((x) => !x)}
      >
        <Dot variant={dotVariant(s)} pulse={pulse} />
        <span className="wa-badge__label" title={label}>
          {label}
        </span>
        <span className="wa-badge__chevron" aria-hidden="true">
          {expanded ? "▴" : "▾"}
        </span>
      </button>
      <span role="status" aria-live="polite" className="wa-sr-only">
        {announcement}
      </span>
      <div id={panelId} className="wa-badge__panel" hidden={!expanded} data-testid="wa-status-badge-details">
        {expanded ? (
          <>
            <dl className="wa-badge__facts">
              {s.sessionName ? (
                <>
                  <dt>Session</dt>
                  <dd data-testid="wa-badge-session">{s.sessionName}</dd>
                </>
              ) : null}
              <dt>Phone</dt>
              <dd data-testid="wa-badge-phone">{maskPhone(s.phoneNumber) ?? "none"}</dd>
              <dt>Status</dt>
              <dd>{detail}</dd>
              <dt>Last connected</dt>
              <dd>
                {s.lastConnectedAt ? (
                  <time dateTime={s.lastConnectedAt.toISOString()} title={formatDateTime(s.lastConnectedAt)}>
                    {formatRelative(s.lastConnectedAt)}
                  </time>
                ) : (
                  "never"
                )}
              </dd>
              {!connected && s.lastError ? (
                <>
                  <dt>Error</dt>
                  <dd data-testid="wa-badge-error">
                    <ErrorText error={s.lastError} />
                  </dd>
                </>
              ) : null}
            </dl>
            {s.noSession ? (
              <NavLink href={s.addSessionHref} className="wa-button" testId="wa-badge-add-session">
                Add session
              </NavLink>
            ) : !connected ? (
              <ReconnectButton label="Reconnect" testId="wa-badge-reconnect" />
            ) : null}
            <NavLink href={settingsHref ?? s.settingsHref} className="wa-badge__settings" testId="wa-badge-settings">
              Settings
            </NavLink>
          </>
        ) : null}
      </div>
    </div>
  );
}
