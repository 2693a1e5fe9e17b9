import { describeConnectionStatus } from "../../core/format";
import type { Session } from "../../core/types";
import { band } from "../timeline";

/** A session's status as text with an icon (never colour alone). */
export function StatusLabel({ session }: { session: Pick<Session, "connectionStatus" | "supervisorState" | "manualInterventionNeeded"> }) {
  const b = band(session.connectionStatus);
  const icon = b === "ok" ? "●" : b === "pending" ? "◐" : b === "down" ? "✕" : "?";
  return (
    <span className={`status status--${b}`}>
      <span aria-hidden="true">{icon} </span>
      {describeConnectionStatus(session.connectionStatus)}
      {session.manualInterventionNeeded ? <span className="status__note"> — needs a manual reconnect</span> : null}
    </span>
  );
}
