// Child processes started by the tests: killed if the test process exits without stopping them,
// so a failed test never leaves a server behind.
const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Remembers child until it exits. */
export function track(child) {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}
