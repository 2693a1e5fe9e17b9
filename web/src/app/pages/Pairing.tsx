import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../../core/client";
import { describeConnectionStatus, explainError, maskPhone } from "../../core/format";
import type { Session } from "../../core/types";
import { useWhatsAppStatus } from "../../react/context";
import { ErrorText } from "../../react/parts";
import { useDashboard } from "../context";
import { Link } from "../router";

/** Seconds left until `expiresAt`, ticking every second. */
function useCountdown(expiresAt: string | null): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!expiresAt) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [expiresAt]);
  if (!expiresAt) return null;
  const t = new Date(expiresAt).getTime();
  return Number.isNaN(t) ? null : Math.max(0, Math.ceil((t - now) / 1000));
}

/** The pairing view: the live QR code until the session connects. */
export function PairingPage({ id }: { id: string }) {
  const { api, config } = useDashboard();
  const { snapshot, subscribeQr } = useWhatsAppStatus();
  const [svg, setSvg] = useState<string | null>(null);
  const [expiresAt, setExpiresAt] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>("Waiting for the first QR code…");
  const [polled, setPolled] = useState<Session | null>(null);
  const live = snapshot.sessions.find((s) => s.sessionId === id) ?? null;
  const session = live && (!polled || (live.updatedAt ?? "") >= (polled.updatedAt ?? "")) ? live : polled;
  const connected = session?.connectionStatus === "connected";

  const load = useCallback(async () => {
    try {
      const [q, image] = await Promise.all([api.qr(id), api.qrSvg(id)]);
      setExpiresAt(q.expiresAt);
      setSvg(image);
      setNote(null);
    } catch (e) {
      setSvg(null);
      setExpiresAt(null);
      setNote(
        e instanceof ApiError && e.status === 404
          ? "There is no QR code to show: this session is not waiting for a scan."
          : `Could not load the QR code. ${explainError((e as Error).message)?.summary ?? ""}`,
      );
    }
    api.session(id).then(setPolled, () => {});
  }, [api, id]);

  useEffect(() => {
    if (connected) return;
    void load();
    const t = setInterval(load, config.qrRefreshMs);
    const off = subscribeQr((q) => {
      if (q.sessionId === id) void load();
    });
    return () => {
      clearInterval(t);
      off();
    };
  }, [load, connected, config.qrRefreshMs, subscribeQr, id]);

  const left = useCountdown(expiresAt);
  return (
    <section aria-labelledby="pair-title">
      <h1 id="pair-title">Pair {session?.sessionName ?? "session"}</h1>
      {connected ? (
        <div className="card" role="status" data-testid="pairing-done">
          <p>
            <span aria-hidden="true">✓ </span>Paired and connected{session?.phoneNumber ? ` as ${maskPhone(session.phoneNumber)}` : ""}.
          </p>
          <Link to={`/session/${id}`}>Open the session</Link>
        </div>
      ) : (
        <div className="card pairing">
          <ol className="steps">
            <li>Open WhatsApp on the phone.</li>
            <li>Settings → Linked devices → Link a device.</li>
            <li>Point the phone at this code.</li>
          </ol>
          {svg ? (
            <img
              className="qr"
              src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`}
              alt="QR code to scan with WhatsApp to link this session"
              width={264}
              height={264}
              data-testid="qr-image"
            />
          ) : (
            <div className="qr qr--empty" data-testid="qr-placeholder">
              {note}
            </div>
          )}
          <p role="status" aria-live="polite" data-testid="qr-countdown">
            {left !== null ? (left > 0 ? `This code expires in ${left} s.` : "This code has expired; a new one is on its way.") : ""}
          </p>
          <div className="muted small" data-testid="pairing-status">
            Status: {describeConnectionStatus(session?.connectionStatus)}.{" "}
            {session?.lastError ? <ErrorText error={session.lastError} /> : null}
          </div>
          {session && session.connectionStatus !== "qr_pending" && session.paired !== false ? (
            <Link to={`/session/${id}`}>Open the session</Link>
          ) : null}
        </div>
      )}
    </section>
  );
}
