// The example's sign-in: one password (EXAMPLE_PASSWORD), a signed cookie. A real app has its own users; what
// matters here is that every server action and the event proxy check the caller before using wagate's key.
import "server-only";
import { createHmac, timingSafeEqual } from "node:crypto";
import { cookies } from "next/headers";

const COOKIE = "example_session";
const TTL_S = 12 * 3600;

function secret(): string {
  const p = process.env.EXAMPLE_PASSWORD;
  if (!p) throw new Error("EXAMPLE_PASSWORD is not set");
  return p;
}

function sign(exp: number): string {
  return createHmac("sha256", `example-session:${secret()}`).update(String(exp)).digest("hex");
}

export function passwordOk(given: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret());
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startSession(): Promise<void> {
  const exp = Math.floor(Date.now() / 1000) + TTL_S;
  (await cookies()).set(COOKIE, `${exp}.${sign(exp)}`, {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    maxAge: TTL_S,
    secure: process.env.NODE_ENV === "production" && process.env.EXAMPLE_INSECURE_COOKIE !== "1",
  });
}

export async function endSession(): Promise<void> {
  (await cookies()).delete(COOKIE);
}

/** Whether the request comes from a signed-in user. */
export async function signedIn(): Promise<boolean> {
  const v = (await cookies()).get(COOKIE)?.value ?? "";
  const [exp, mac] = v.split(".");
  const n = Number(exp);
  if (!Number.isFinite(n) || n < Date.now() / 1000 || !mac) return false;
  const want = Buffer.from(sign(n));
  const got = Buffer.from(mac);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** For server actions: throws unless the caller is signed in. */
export async function requireUser(): Promise<void> {
  if (!(await signedIn())) throw new Error("not signed in");
}
