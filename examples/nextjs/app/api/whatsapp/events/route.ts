// GET /api/whatsapp/events: wagate's event stream, passed through for a signed-in user. The browser's
// EventSource sends this app's cookie; the key to wagate is added here, on the server.
import { signedIn } from "@/lib/auth";
import { openEvents } from "@/lib/whatsapp/health-client";

export const dynamic = "force-dynamic";

export async function GET(req: Request): Promise<Response> {
  if (!(await signedIn())) return new Response("not signed in\n", { status: 401 });
  let upstream: Response;
  try {
    upstream = await openEvents(req.headers.get("last-event-id"), req.signal);
  } catch {
    return new Response("wagate is not reachable\n", { status: 502 });
  }
  if (!upstream.ok || upstream.body === null) return new Response(null, { status: upstream.status === 401 ? 502 : upstream.status });
  return new Response(upstream.body, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}
