import { createContext, useContext } from "react";
import type { DashboardApi } from "./api";
import type { DashboardConfig } from "./config";

export interface Dashboard {
  api: DashboardApi;
  config: DashboardConfig;
  signOut(): void;
  /** The session the dot and the badge follow by choice (null: the one named "primary", else the oldest). */
  followId: string | null;
  setFollowId(id: string | null): void;
}

export const DashboardCtx = createContext<Dashboard | null>(null);

export function useDashboard(): Dashboard {
  const d = useContext(DashboardCtx);
  if (!d) throw new Error("useDashboard outside the dashboard");
  return d;
}
