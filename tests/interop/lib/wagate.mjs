// Runs the wagate binary under test ($WAGATE_BIN, default ../../build/wagate relative to tests/interop).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

export const WAGATE_BIN = path.resolve(process.env.WAGATE_BIN || path.join(here, '..', '..', '..', 'build', 'wagate'));

export function assertBinary() {
  if (!existsSync(WAGATE_BIN)) {
    throw new Error(`wagate binary not found at ${WAGATE_BIN} (build it, or set WAGATE_BIN)`);
  }
}

/**
 * Runs `wagate ...args` with `input` on stdin; resolves {code, signal, stdout, stderr} (strings).
 * Kills the process (SIGKILL) after timeoutMs and rejects.
 */
export function run(args, input, { timeoutMs = 60000 } = {}) {
  assertBinary();
  return new Promise((resolve, reject) => {
    const child = spawn(WAGATE_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) {
        reject(new Error(`wagate ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${res.stderr.slice(0, 500)}`));
      } else {
        resolve(res);
      }
    });
    // The child may exit before reading all of stdin (malformed input); ignore EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * Batch mode: one input line per item, one output line per input line.
 * Resolves an array of output lines (without newline), same length as `items` (or rejects).
 */
export async function runLines(args, items, opts) {
  for (const [i, s] of items.entries()) {
    if (s.includes('\n')) throw new Error(`batch item ${i} contains a newline`);
  }
  const res = await run([...args, '--lines'], items.map((s) => `${s}\n`).join(''), opts);
  if (res.code !== 0 || res.signal) {
    throw new Error(`wagate ${args.join(' ')} --lines: exit ${res.code} signal ${res.signal}; stderr: ${res.stderr.slice(0, 1000)}`);
  }
  const lines = res.stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length !== items.length) {
    throw new Error(`wagate ${args.join(' ')} --lines: ${items.length} input lines but ${lines.length} output lines; stderr: ${res.stderr.slice(0, 1000)}`);
  }
  return lines;
}
