"use server";
// The server actions the status components call. Each checks the caller first: an action is an endpoint
// anyone who can load the app could call, and a reconnect changes state.
import type { DeepHealth, Health, ReconnectResult } from "@wagate/web/server";
import { requireUser } from "@/lib/auth";
import { getDeepHealth, getHealth, reconnectPrimary } from "@/lib/whatsapp/health-client";

export async function getWhatsAppHealthAction(): Promise<Health> {
  await requireUser();
  return getHealth();
}

export async function getWhatsAppDeepHealthAction(): Promise<DeepHealth> {
  await requireUser();
  return getDeepHealth();
}

export async function reconnectPrimarySessionAction(): Promise<ReconnectResult> {
  await requireUser();
  return reconnectPrimary();
}
