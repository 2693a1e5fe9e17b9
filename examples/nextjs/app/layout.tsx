import type { ReactNode } from "react";
import "@wagate/web/style.css";
import "./globals.css";

export const metadata = { title: "wagate example" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
