import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deep, FakeClient, FakeEventSource, FakeVisibility, health, session } from "../test/fakes";
import { WhatsAppStatusBadge, WhatsAppStatusDot, WhatsAppStatusPopover, WhatsAppStatusProvider, useWhatsAppStatus } from "./index";
import { maskPhone } from "../core/format";

function setup(client: FakeClient, ui: React.ReactNode, extra: Partial<React.ComponentProps<typeof WhatsAppStatusProvider>> = {}) {
  return render(
    <WhatsAppStatusProvider client={client} visibility={new FakeVisibility()} settingsHref="/settings" {...extra}>
      {ui}
    </WhatsAppStatusProvider>,
  );
}

function downClient(): FakeClient {
  const c = new FakeClient();
  c.healthAnswer = health({ connected: 0 });
  c.deepAnswer = deep([
    session({ connectionStatus: "disconnected", socketAlive: false, lastError: "logged out (401): pair again" }),
  ]);
  return c;
}

describe("maskPhone", () => {
  it("keeps the country code and the last four digits", () => {
    expect(maskPhone("27821231234")).toBe("+27 **** 1234");
    expect(maskPhone("15551234567")).toBe("+1 **** 4567");
    expect(maskPhone("353871234567")).toBe("+353 **** 4567");
    expect(maskPhone(null)).toBeNull();
  });
});

describe("WhatsAppStatusDot", () => {
  it("is green with the Connected tooltip", async () => {
    setup(new FakeClient(), <WhatsAppStatusDot />);
    const dot = await screen.findByRole("button", { name: "WhatsApp: Connected" });
    expect(dot).toHaveProperty("title", "WhatsApp: Connected");
    expect(dot.getAttribute("data-status")).toBe("connected");
    expect(dot.querySelector(".wa-dot--ok")).not.toBeNull();
    expect(dot.getAttribute("aria-expanded")).toBe("false");
  });

  it("is red with the Disconnected tooltip; a click opens the popover, Escape closes it and gives focus back", async () => {
    const user = userEvent.setup();
    setup(downClient(), <WhatsAppStatusDot />);
    const dot = await screen.findByRole("button", { name: "WhatsApp: Disconnected - Click for details" });
    expect(dot.title).toBe("WhatsApp: Disconnected - Click for details");
    expect(dot.querySelector(".wa-dot--bad")).not.toBeNull();
    await user.click(dot);
    const pop = screen.getByTestId("wa-status-popover");
    // It says which session it follows.
    expect(within(pop).getByTestId("wa-status-session").textContent).toContain("primary");
    expect(dot.getAttribute("data-session-id")).toBeTruthy();
    expect(pop.getAttribute("role")).toBe("dialog");
    expect(dot.getAttribute("aria-expanded")).toBe("true");
    expect(dot.getAttribute("aria-controls")).toBe(pop.id);
    expect(document.activeElement).toBe(pop);
    expect(within(pop).getByText(/logged out \(401\): pair again/)).toBeTruthy();
    expect(within(pop).getByRole("button", { name: "Try Reconnect" })).toBeTruthy();
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("wa-status-popover")).toBeNull();
    expect(document.activeElement).toBe(dot);
    expect(dot.getAttribute("aria-expanded")).toBe("false");
  });

  it("opens with the keyboard (Enter and Space)", async () => {
    const user = userEvent.setup();
    setup(new FakeClient(), <WhatsAppStatusDot />);
    await screen.findByRole("button", { name: "WhatsApp: Connected" });
    await user.tab();
    expect(document.activeElement).toBe(screen.getByTestId("wa-status-dot"));
    await user.keyboard("{Enter}");
    expect(screen.getByTestId("wa-status-popover")).toBeTruthy();
    await user.keyboard("{Escape}");
    screen.getByTestId("wa-status-dot").focus();
    await user.keyboard(" ");
    expect(screen.getByTestId("wa-status-popover")).toBeTruthy();
  });

  it("pulses and announces when the status changes", async () => {
    const es = FakeEventSource;
    es.instances = [];
    setup(new FakeClient(), <WhatsAppStatusDot popover={false} />, { eventsUrl: "/events", eventSourceFactory: es.factory });
    const dot = await screen.findByRole("button", { name: "WhatsApp: Connected" });
    expect(dot.querySelector(".wa-dot--pulse")).toBeNull();
    const stream = es.instances[0];
    expect(stream.init.withCredentials).toBe(true);
    act(() => {
      stream.emit("hello", { epoch: "e1", lastId: 1 });
      stream.emit("session", session({ connectionStatus: "disconnected", socketAlive: false }), 2);
    });
    await screen.findByRole("button", { name: "WhatsApp: Disconnected - Click for details" });
    expect(dot.querySelector(".wa-dot--pulse")).not.toBeNull();
    const live = document.querySelector('[role="status"][aria-live="polite"]');
    expect(live?.textContent).toBe("WhatsApp: Disconnected - Click for details");
  });
});

describe("WhatsAppStatusPopover", () => {
  it("shows the phone number and last connection when connected, and a settings link", async () => {
    setup(new FakeClient(), <WhatsAppStatusPopover />);
    const pop = await screen.findByTestId("wa-status-popover");
    await waitFor(() => expect(pop.textContent).toContain("WhatsApp: Connected"));
    expect(pop.textContent).toContain("+27 **** 1234"); // masked, as in the badge
    expect(pop.textContent).not.toContain("27821231234");
    expect(pop.textContent).toContain("Last connected:");
    expect(within(pop).queryByRole("button", { name: "Try Reconnect" })).toBeNull();
    expect(within(pop).getByRole("link").getAttribute("href")).toBe("/settings");
    expect(pop.querySelector("svg.wa-icon--ok")).not.toBeNull();
  });

  it("Try Reconnect shows a spinner while it runs, then the outcome", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const c = downClient();
      c.reconnectDelayMs = 1000;
      c.reconnectAnswer = { success: false, message: "the session has no credentials: pair it first" };
      setup(c, <WhatsAppStatusPopover />);
      const btn = await screen.findByRole("button", { name: "Try Reconnect" });
      fireEvent.click(btn);
      await waitFor(() => expect(btn.getAttribute("aria-busy")).toBe("true"));
      expect(btn.querySelector(".wa-spinner")).not.toBeNull();
      expect((btn as HTMLButtonElement).disabled).toBe(true);
      expect(btn.textContent).toBe("Reconnecting…");
      await act(() => vi.advanceTimersByTimeAsync(1000));
      await waitFor(() => expect(btn.textContent).toBe("Try Reconnect"));
      expect(btn.querySelector(".wa-spinner")).toBeNull();
      expect(screen.getByTestId("wa-popover-reconnect-outcome").textContent).toBe(
        "Reconnect failed. This session is not paired yet. Show its QR code and scan it with WhatsApp on the phone.Detailsthe session has no credentials: pair it first",
      );
      expect(c.reconnect).toHaveBeenCalledWith("6f1c2b0e-3f0b-4e55-9d5a-0c3f1f6d2a11");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("WhatsAppStatusPopover without a session", () => {
  it("offers Add session, not Try Reconnect", async () => {
    const c = new FakeClient();
    c.healthAnswer = health({ total: 0, connected: 0 });
    c.deepAnswer = deep([]);
    setup(c, <WhatsAppStatusPopover />);
    await screen.findByTestId("wa-status-empty");
    expect(screen.getByTestId("wa-popover-add-session").getAttribute("href")).toBe("/settings");
    expect(screen.queryByTestId("wa-popover-reconnect")).toBeNull();
    expect(screen.getByTestId("wa-status-popover").textContent).toContain("No session");
  });
});

describe("WhatsAppStatusBadge", () => {
  it("says WhatsApp Connected and expands with the masked phone and a settings link", async () => {
    const user = userEvent.setup();
    setup(new FakeClient(), <WhatsAppStatusBadge />);
    const toggle = await screen.findByRole("button", { name: /WhatsApp Connected/ });
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    const panel = document.getElementById(toggle.getAttribute("aria-controls")!)!;
    expect(panel.hidden).toBe(false);
    expect(screen.getByTestId("wa-badge-phone").textContent).toBe("+27 **** 1234");
    expect(panel.textContent).toContain("Connected");
    expect(panel.textContent).toContain("Last connected");
    expect(within(panel).getByRole("link", { name: "Settings" }).getAttribute("href")).toBe("/settings");
    expect(within(panel).queryByRole("button", { name: "Reconnect" })).toBeNull();
    await user.keyboard("{Escape}");
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
  });

  it("says WhatsApp Offline and offers Reconnect when disconnected", async () => {
    const user = userEvent.setup();
    const c = downClient();
    c.reconnectAnswer = { success: true, message: "connected" };
    setup(c, <WhatsAppStatusBadge />);
    const toggle = await screen.findByRole("button", { name: /WhatsApp Offline/ });
    await user.click(toggle);
    const btn = screen.getByTestId("wa-badge-reconnect");
    expect(btn.textContent).toBe("Reconnect");
    expect(screen.getByTestId("wa-status-badge").textContent).toContain("StatusDisconnected");
    await user.click(btn);
    await waitFor(() => expect(screen.getByTestId("wa-badge-reconnect-outcome").textContent).toBe("Reconnected: connected"));
  });

  it("with no session: says so, and leads to Add session instead of a reconnect that cannot work", async () => {
    const user = userEvent.setup();
    const c = new FakeClient();
    c.healthAnswer = health({ total: 0, connected: 0, uptime: 3 });
    c.deepAnswer = deep([]);
    setup(c, <WhatsAppStatusBadge />, { addSessionHref: "/new-session" });
    const toggle = await screen.findByRole("button", { name: /No WhatsApp session/ });
    await user.click(toggle);
    expect(screen.getByTestId("wa-badge-add-session").getAttribute("href")).toBe("/new-session");
    expect(screen.queryByTestId("wa-badge-reconnect")).toBeNull();
    expect(screen.getByTestId("wa-status-badge").textContent).not.toContain("Reconnecting");
  });

  it("names the session it follows, and explains an error in a sentence with the detail on request", async () => {
    const user = userEvent.setup();
    setup(downClient(), <WhatsAppStatusBadge defaultExpanded />);
    await waitFor(() => expect(screen.getByTestId("wa-badge-session").textContent).toBe("primary"));
    const err = await screen.findByTestId("wa-badge-error");
    expect(err.textContent).toMatch(/^WhatsApp logged this device out\. Pair it again to reconnect\./);
    const details = err.querySelector("details")!;
    expect(details.open).toBe(false);
    await user.click(within(err).getByText("Details"));
    expect(details.open).toBe(true);
    expect(details.textContent).toContain("logged out (401): pair again");
  });

  it("a settings link uses onNavigate when given", async () => {
    const user = userEvent.setup();
    const nav = vi.fn();
    setup(new FakeClient(), <WhatsAppStatusBadge defaultExpanded />, { onNavigate: nav });
    await user.click(await screen.findByRole("link", { name: "Settings" }));
    expect(nav).toHaveBeenCalledWith("/settings");
  });
});

describe("WhatsAppStatusProvider", () => {
  function Probe() {
    const s = useWhatsAppStatus();
    return (
      <pre data-testid="probe">
        {JSON.stringify({ status: s.status, serverReachable: s.serverReachable, connectionStatus: s.connectionStatus, phoneNumber: s.phoneNumber, statusText: s.statusText, streaming: s.streaming })}
      </pre>
    );
  }
  const probe = () => JSON.parse(screen.getByTestId("probe").textContent!);

  beforeEach(() => {
    FakeEventSource.instances = [];
  });
  afterEach(() => vi.useRealTimers());

  it("exposes the state of the primary session", async () => {
    const c = new FakeClient();
    c.deepAnswer = deep([
      session({ sessionId: "a", sessionName: "shop", phoneNumber: "111111111", createdAt: "2026-01-01T00:00:00.000Z" }),
      session({ sessionId: "b", sessionName: "primary", phoneNumber: "27821231234", createdAt: "2026-02-01T00:00:00.000Z" }),
    ]);
    setup(c, <Probe />);
    await waitFor(() => expect(probe().phoneNumber).toBe("27821231234"));
    expect(probe()).toMatchObject({ status: "connected", serverReachable: true, connectionStatus: "connected", statusText: "Connected" });
  });

  it("follows the stream, stops polling while it is up, and falls back to polling when it fails", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const c = new FakeClient();
    setup(c, <Probe />, { eventsUrl: "/events", eventSourceFactory: FakeEventSource.factory, intervals: { lightMs: 1000 } });
    const es = FakeEventSource.instances[0];
    expect(es.url).toBe("/events");
    act(() => {
      es.emit("hello", { epoch: "e1", lastId: 0 });
      es.emit("health", health());
      es.emit("session", session());
    });
    await waitFor(() => expect(probe().streaming).toBe(true));
    const calls = c.getHealth.mock.calls.length;
    await act(() => vi.advanceTimersByTimeAsync(5000));
    expect(c.getHealth.mock.calls.length).toBe(calls);
    act(() => es.emit("session", session({ connectionStatus: "connecting", socketAlive: false }), 3));
    await waitFor(() => expect(probe().status).toBe("disconnected"));
    // the stream fails: polling takes over at once
    act(() => es.fail(false));
    await act(() => vi.advanceTimersByTimeAsync(10));
    expect(probe().streaming).toBe(false);
    expect(c.getHealth.mock.calls.length).toBe(calls + 1);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(c.getHealth.mock.calls.length).toBe(calls + 2);
    // a new server process: sessions are forgotten and come again from the snapshot
    act(() => {
      es.emit("hello", { epoch: "e2", lastId: 0 });
      es.emit("session", session({ phoneNumber: "15551234567" }));
    });
    await waitFor(() => expect(probe()).toMatchObject({ streaming: true, phoneNumber: "15551234567", status: "connected" }));
  });
});
