// A throwaway PostgreSQL cluster for the end-to-end tests (tests/pg/cluster.sh), and psql.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';

const CLUSTER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'pg', 'cluster.sh');

/** Starts an empty cluster in build/<name> (beside the wagate binary); returns {url, stop, resume, psql}. */
export function startCluster(name) {
  const dir = path.join(path.dirname(WAGATE_BIN), name);
  const url = execFileSync(CLUSTER, ['start', dir], { encoding: 'utf8' }).trim();
  const c = {
    dir,
    url,
    stop: () => execFileSync(CLUSTER, ['stop', dir]),
    resume: () => execFileSync(CLUSTER, ['resume', dir]),
    /** Runs SQL (psql variables as :'name' from vars); returns rows as arrays of strings. */
    psql(query, vars = {}) {
      const args = ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1'];
      for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
      args.push(url);
      const out = execFileSync('psql', args, { input: query, encoding: 'utf8' });
      return out.split('\n').filter((l) => l.length).map((l) => l.split('\t'));
    },
  };
  return c;
}

/**
 * Credentials of a logged-in device for PHONE, as wagate writes them (the benchmark's
 * seeder makes them; a mock with acceptAnyLogin lets them in).
 */
export function seededCreds(phone) {
  const seed = path.join(path.dirname(WAGATE_BIN), 'bench', 'wagate-bench-seed');
  const sql = execFileSync(seed, ['--count', '1', '--phone-base', phone], { encoding: 'utf8', maxBuffer: 1 << 24 });
  // The blob is one SQL string: JSON (compact, with no quote of its own) between single quotes.
  const m = sql.match(/'(\{"format":[^']*\})'/);
  if (!m) throw new Error('the seeder printed no credentials');
  return m[1];
}

/**
 * A TCP proxy to the cluster's Unix socket, to cut one node off from the database: blackhole() holds
 * every byte both ways (as a network partition does; no connection is closed), heal() lets them flow.
 */
export async function startProxy(dir) {
  const net = await import('node:net');
  const socketPath = path.join(dir, '.s.PGSQL.5432');
  let cut = false;
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.createConnection(socketPath);
    const pair = { client, upstream };
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    // While cut off, a new connection is accepted and then hears nothing (heal() joins it up).
    if (!cut) {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: (db = 'wagate') => `postgresql://wagate@127.0.0.1:${port}/${db}`,
    blackhole() {
      cut = true;
      for (const p of pairs) {
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.pause();
        p.upstream.pause();
      }
    },
    heal() {
      cut = false;
      for (const p of pairs) {
        p.client.pipe(p.upstream);
        p.upstream.pipe(p.client);
        p.client.resume();
        p.upstream.resume();
      }
    },
    close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      server.close();
    },
  };
}
