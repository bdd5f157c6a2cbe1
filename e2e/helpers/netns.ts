/**
 * A private network namespace for tests whose peers never gather on the loopback interface (Chromium, libnice):
 * lo up, and a veth pair inside the namespace holding 127.0.0.2 (scope global, so Chromium gathers it), no
 * route out and IPv6 off — every packet stays on 127.0.0.0/8. Needs root and iproute2; fails loudly otherwise.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Netns {
  name: string;
  /** Spawns a command inside the namespace; it is killed by destroy(). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  destroy(): void;
}

const live = new Set<string>();
let hooked = false;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Removes namespaces left by crashed runs (ours are named sc-<pid>-…; a live pid's are kept). */
export function sweepStaleNamespaces(): void {
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^sc-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      try {
        ip(['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    }
  }
}

export function createNetns(): Netns {
  if (process.getuid?.() !== 0) throw new Error('network-namespace tests need root (ip netns add); run the test command as root');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('network-namespace tests need iproute2 (`ip`); scripts/setup.sh installs it');
  }
  sweepStaleNamespaces();
  const name = `sc-${process.pid}-${randomBytes(3).toString('hex')}`;
  ip(['netns', 'add', name]);
  live.add(name);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const n of live) {
        try {
          ip(['netns', 'del', n]);
        } catch {
          /* gone */
        }
      }
    });
  }
  const children = new Set<ChildProcess>();
  try {
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'link', 'add', 'sc0', 'type', 'veth', 'peer', 'name', 'sc1']);
    ip(['-n', name, 'addr', 'add', '127.0.0.2/32', 'dev', 'sc0', 'scope', 'global']);
    ip(['-n', name, 'link', 'set', 'sc0', 'up']);
    ip(['-n', name, 'link', 'set', 'sc1', 'up']);
    execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv4.conf.all.route_localnet=1']);
  } catch (err) {
    ip(['netns', 'del', name]);
    live.delete(name);
    throw err;
  }
  return {
    name,
    spawn(cmd, args, opts = {}) {
      const c = spawn('ip', ['netns', 'exec', name, cmd, ...args], opts);
      children.add(c);
      c.once('exit', () => children.delete(c));
      return c;
    },
    destroy() {
      for (const c of children) c.kill('SIGKILL');
      try {
        ip(['netns', 'del', name]);
      } catch {
        /* gone */
      }
      live.delete(name);
    },
  };
}
