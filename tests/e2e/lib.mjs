// Runs wagate's own commands (pair, connect) as a person or a script would, reading their
// `--raw` lines as they come. The mock is started with tests/interop/lib/mock.mjs.
import { spawn } from 'node:child_process';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { track } from '../interop/lib/children.mjs';


/**
 * Starts `wagate <args>` with env added to the environment. Returns an object whose
 * next(prefix, ms) resolves with the next stdout line starting with prefix (or rejects
 * after ms), and exit(ms) with {code, signal}.
 */
export function start(args, env = {}) {
  const child = spawn(WAGATE_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const lines = [];
  const waiters = [];
  let stderr = '';
  let exited = null;
  const exitWaiters = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-20000);
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    wake();
    for (const w of exitWaiters.splice(0)) w(exited);
  });
  let read = 0;
  function wake() {
    for (const w of [...waiters]) w();
  }
  const proc = {
    child,
    lines,
    stderr: () => stderr,
    next(prefix, ms = 10000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          while (read < lines.length) {
            const l = lines[read++];
            if (l.startsWith(prefix)) {
              done();
              resolve(l);
              return;
            }
          }
          if (exited) {
            done();
            reject(new Error(`wagate ${args[0]} exited (${JSON.stringify(exited)}) before "${prefix}"; lines: ${JSON.stringify(lines)}; stderr: ${stderr.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no "${prefix}" line within ${ms} ms; lines: ${JSON.stringify(lines)}; stderr: ${stderr.slice(-2000)}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          const k = waiters.indexOf(check);
          if (k >= 0) waiters.splice(k, 1);
        };
        waiters.push(check);
        check();
      });
    },
    exit(ms = 10000) {
      if (exited) return Promise.resolve(exited);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`wagate ${args[0]} did not exit within ${ms} ms`)), ms);
        exitWaiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    kill(sig = 'SIGTERM') {
      if (!exited) child.kill(sig);
    },
  };
  return proc;
}
