"use client";
// The provider, fed by the server actions (the API key stays on the server) and by the event stream through
// this app's own proxy route (the browser sends this app's cookie, never wagate's key).
import type { ReactNode } from "react";
import { useRouter } from "next/navigation";
import { WhatsAppStatusProvider, type StatusClient } from "@wagate/web";
import {
  getWhatsAppDeepHealthAction,
  getWhatsAppHealthAction,
  reconnectPrimarySessionAction,
} from "@/actions/whatsapp-health-actions";

const client: StatusClient = {
  getHealth: () => getWhatsAppHealthAction(),
  getDeepHealth: () => getWhatsAppDeepHealthAction(),
  reconnect: () => reconnectPrimarySessionAction(),
};

export function WhatsAppStatus({ children }: { children: ReactNode }) {
  const router = useRouter();
  return (
    <WhatsAppStatusProvider
      client={client}
      eventsUrl="/api/whatsapp/events"
      settingsHref="/dashboard"
      onNavigate={(href) => router.push(href)}
    >
      {children}
    </WhatsAppStatusProvider>
  );
}
