import { useCallback, useId, useRef, useState } from "react";
import { useWhatsAppStatus } from "./context";
import { WhatsAppStatusPopover } from "./WhatsAppStatusPopover";
import { Dot, dotTooltip, dotVariant, useAnnouncement, usePulse } from "./parts";

export interface WhatsAppStatusDotProps {
  className?: string;
  /** Open the popover on click (default true). */
  popover?: boolean;
  /** Overrides the provider's settings link in the popover. */
  settingsHref?: string;
}

/** An 8 px dot, green or red, with a tooltip; a click opens the status popover. */
export function WhatsAppStatusDot({ className, popover = true, settingsHref }: WhatsAppStatusDotProps) {
  const s = useWhatsAppStatus();
  const connected = s.status === "connected";
  const [open, setOpen] = useState(false);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const popId = useId();
  const pulse = usePulse(s.unknown ? null : s.status);
  const tooltip = dotTooltip(connected);
  const announcement = useAnnouncement(s.unknown ? null : tooltip);
  const close = useCallback((reason: "escape" | "button" | "outside") => {
    setOpen(false);
    if (reason !== "outside") buttonRef.current?.focus();
  }, []);

  return (
    <span className={`wa-dot-anchor${className ? ` ${className}` : ""}`}>
      <button
        ref={buttonRef}
        type="button"
        className="wa-dot-button"
        data-testid="wa-status-dot"
        data-status={s.status}
        data-session-id={s.sessionId ?? undefined}
        title={tooltip}
        aria-label={tooltip}
        aria-haspopup={popover ? "dialog" : undefined}
        aria-expanded={popover ? open : undefined}
        aria-controls={popover && open ? popId : undefined}
        onClick={() => popover && setOpen((o) => !o)}
      >
        <Dot variant={dotVariant(s)} pulse={pulse} />
      </button>
      <span role="status" aria-live="polite" className="wa-sr-only">
        {announcement}
      </span>
      {popover && open ? (
        <WhatsAppStatusPopover id={popId} onClose={close} anchorRef={buttonRef} settingsHref={settingsHref} />
      ) : null}
    </span>
  );
}
