import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StatusPoller } from "./poller";
import { deriveStatus } from "./status";
import { deep, FakeClient, FakeVisibility, health } from "../test/fakes";

/** Lets pending promise callbacks run without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

describe("StatusPoller", () => {
  let client: FakeClient;
  let vis: FakeVisibility;
  let poller: StatusPoller;

  beforeEach(() => {
    vi.useFakeTimers();
    client = new FakeClient();
    vis = new FakeVisibility();
  });
  afterEach(() => {
    poller?.stop();
    vi.useRealTimers();
  });

  const make = (intervals = {}) => (poller = new StatusPoller({ client, visibility: vis, intervals, refreshDeepOnChange: false }));

  it("polls /health at once and then every 30 s", async () => {
    make().start();
    await flush();
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.getHealth).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(30_000 * 3);
    expect(client.getHealth).toHaveBeenCalledTimes(5);
    expect(poller.getSnapshot().phase).toBe("normal");
  });

  it("polls /health/deep at once and then every 5 min", async () => {
    make().start();
    await flush();
    expect(client.getDeepHealth).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(299_999);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(2);
    expect(client.getHealth).toHaveBeenCalledTimes(11); // 0, 30, ..., 300 s
    expect(poller.getSnapshot().sessions).toHaveLength(1);
  });

  it("takes every interval from its options", async () => {
    make({ lightMs: 500, deepMs: 2000 }).start();
    await flush();
    await vi.advanceTimersByTimeAsync(2000);
    expect(client.getHealth).toHaveBeenCalledTimes(5);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(2);
  });

  it("pauses while the tab is hidden and polls at once when it shows again", async () => {
    make().start();
    await flush();
    vis.set(true);
    expect(poller.getSnapshot().phase).toBe("hidden");
    await vi.advanceTimersByTimeAsync(600_000);
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(1);
    vis.set(false);
    await flush();
    expect(client.getHealth).toHaveBeenCalledTimes(2);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(2);
    // and the 30 s schedule starts again from there
    await vi.advanceTimersByTimeAsync(30_000);
    expect(client.getHealth).toHaveBeenCalledTimes(3);
  });

  it("does not poll when started in a hidden tab", async () => {
    vis.hidden = true;
    make().start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.getHealth).not.toHaveBeenCalled();
    vis.set(false);
    await flush();
    expect(client.getHealth).toHaveBeenCalledTimes(1);
  });

  it("retries an unreachable server after 5 s, 10 s, 30 s, then every 30 s", async () => {
    client.down();
    make().start();
    await flush();
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    const s = poller.getSnapshot();
    expect(s.reachable).toBe(false);
    expect(s.phase).toBe("retrying");
    expect(deriveStatus(s).statusText).toBe("Server unreachable");
    const expectCallsAfter = async (ms: number, calls: number) => {
      await vi.advanceTimersByTimeAsync(ms - 1);
      expect(client.getHealth).toHaveBeenCalledTimes(calls - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(client.getHealth).toHaveBeenCalledTimes(calls);
    };
    await expectCallsAfter(5_000, 2);
    await expectCallsAfter(10_000, 3);
    await expectCallsAfter(30_000, 4);
    await expectCallsAfter(30_000, 5);
    await expectCallsAfter(30_000, 6);
    // deep polls wait while the server is unreachable
    const deepCalls = client.getDeepHealth.mock.calls.length;
    await vi.advanceTimersByTimeAsync(300_000);
    expect(client.getDeepHealth.mock.calls.length).toBe(deepCalls);
  });

  it("goes back to the normal schedule, and a deep poll at once, when the server answers again", async () => {
    client.down();
    make().start();
    await flush();
    await vi.advanceTimersByTimeAsync(5_000);
    client.healthAnswer = health();
    client.deepAnswer = deep();
    const deepBefore = client.getDeepHealth.mock.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(poller.getSnapshot().reachable).toBe(true);
    expect(poller.getSnapshot().failures).toBe(0);
    expect(client.getDeepHealth.mock.calls.length).toBe(deepBefore + 1);
    const calls = client.getHealth.mock.calls.length;
    await vi.advanceTimersByTimeAsync(29_999);
    expect(client.getHealth.mock.calls.length).toBe(calls);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.getHealth.mock.calls.length).toBe(calls + 1);
    // and a later outage starts the retries from 5 s again
    client.down();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(poller.getSnapshot().failures).toBe(1);
    const c2 = client.getHealth.mock.calls.length;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.getHealth.mock.calls.length).toBe(c2 + 1);
  });

  it("uses the configured retry delays", async () => {
    client.down();
    make({ retryMs: [200] }).start();
    await flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(client.getHealth).toHaveBeenCalledTimes(6);
  });

  it("says Reconnecting… and polls every 5 s while the uptime is under 60 s, then every 30 s", async () => {
    client.healthAnswer = health({ uptime: 3, connected: 0 });
    client.deepAnswer = deep([]);
    make().start();
    await flush();
    expect(poller.getSnapshot().phase).toBe("restarting");
    const st = deriveStatus(poller.getSnapshot());
    expect(st.reconnecting).toBe(true);
    expect(st.statusText).toBe("Reconnecting…");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.getHealth).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.getHealth).toHaveBeenCalledTimes(3);
    // the server is now stable
    client.healthAnswer = health({ uptime: 61 });
    const deepBefore = client.getDeepHealth.mock.calls.length;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(client.getHealth).toHaveBeenCalledTimes(4);
    expect(poller.getSnapshot().phase).toBe("normal");
    expect(client.getDeepHealth.mock.calls.length).toBe(deepBefore + 1);
    expect(deriveStatus(poller.getSnapshot()).reconnecting).toBe(false);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(client.getHealth).toHaveBeenCalledTimes(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.getHealth).toHaveBeenCalledTimes(5);
  });

  it("refreshes the details at once when the counts change", async () => {
    poller = new StatusPoller({ client, visibility: vis });
    poller.start();
    await flush();
    expect(client.getDeepHealth).toHaveBeenCalledTimes(1);
    client.healthAnswer = health({ connected: 0 });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(2);
  });

  it("stops polling while paused (event stream up) and polls at once on resume", async () => {
    make().start();
    await flush();
    poller.pause();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    poller.resume();
    await flush();
    expect(client.getHealth).toHaveBeenCalledTimes(2);
    expect(client.getDeepHealth).toHaveBeenCalledTimes(2);
  });

  it("stop() cancels every timer", async () => {
    make().start();
    await flush();
    poller.stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(client.getHealth).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
