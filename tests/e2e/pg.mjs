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
  const m = sql.match(/'(\{\n[\s\S]*?\n\})'/);
  if (!m) throw new Error('the seeder printed no credentials');
  return m[1];
}
