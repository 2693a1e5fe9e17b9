// The design's dashboard layout: the provider around everything, the dot in the header, the badge in the
// sidebar's footer. A server component: the dot and the badge come straight from the package (its built
// entry is marked "use client"); only the provider, which is handed the server actions, sits in a client file.
import type { ReactNode } from "react";
import { redirect } from "next/navigation";
import { WhatsAppStatusBadge, WhatsAppStatusDot } from "@wagate/web";
import { signedIn } from "@/lib/auth";
import { signOutAction } from "@/actions/auth-actions";
import { WhatsAppStatus } from "./whatsapp-status";

export const dynamic = "force-dynamic";

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  if (!(await signedIn())) redirect("/sign-in");
  return (
    <WhatsAppStatus>
      <div className="shell">
        <header>
          <strong>Acme CRM</strong>
          <div className="right">
            <WhatsAppStatusDot />
            <form action={signOutAction}>
              <button type="submit">Sign out</button>
            </form>
          </div>
        </header>
        <aside>
          <nav>
            <a href="/dashboard">Dashboard</a>
          </nav>
          <WhatsAppStatusBadge />
        </aside>
        <main>{children}</main>
      </div>
    </WhatsAppStatus>
  );
}
