// A private network built from Linux network namespaces (for the demo and the tests): hosts
// joined by a bridge, each host its own namespace. Everything it creates is removed when it is
// destroyed, and on process exit as a last resort. Traffic never leaves these namespaces (and the
// one veth `uplink` into this namespace that the demo's controller uses).
//
// Each lab records its owner's pid in /run/drover-labs/<id>; creating a lab first removes the
// labs whose owner died without cleaning up (a kill -9), since a stale uplink holding the same
// address would quietly take the replies meant for the next lab.
import { findOnPathSync } from '../agent/which.js';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const RECORDS = '/run/drover-labs';

const run = promisify(execFile);

/** Whether a tool is installed (PATH, or the sbin directories a user's PATH may lack). */
export function hasTool(cmd: string): boolean {
  return findOnPathSync(cmd, ['/usr/sbin', '/sbin']) !== null;
}

export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0 || !hasTool('ip')) return false;
  const probe = `drvprobe${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeLabById(id: string): void {
  const prefix = `drv${id}`;
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
  } catch {
    /* no netns support */
  }
  for (const ns of names) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone already */
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* gone already */
    }
  }
  try {
    execFileSync('ip', ['link', 'del', `${prefix}u`], { stdio: 'ignore' });
  } catch {
    /* went with its namespace */
  }
}

/** Removes the labs whose owning process is gone; returns their ids. */
export function reapStaleLabs(): string[] {
  const reaped: string[] = [];
  let ids: string[] = [];
  try {
    ids = readdirSync(RECORDS).filter((f) => /^[0-9a-f]{6}$/.test(f));
  } catch {
    return reaped;
  }
  for (const id of ids) {
    const pid = Number(readFileSync(join(RECORDS, id), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    removeLabById(id);
    rmSync(join(RECORDS, id), { force: true });
    reaped.push(id);
  }
  return reaped;
}

/**
 * The first 198.18.N.0/24 (RFC 2544 benchmark space) that no address or route on this host
 * overlaps, so two labs (or a lab and a leftover) never answer for the same subnet.
 */
export function freeLabSubnet(): string {
  let used = '';
  try {
    used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  } catch {
    /* no iproute2: any will do */
  }
  for (let n = 0; n < 256; n++) if (!new RegExp(`\\b198\\.18\\.${n}\\.`).test(used)) return `198.18.${n}`;
  throw new Error('no free 198.18.N.0/24 subnet for the lab');
}

export class Lab {
  readonly id = randomBytes(3).toString('hex');
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly uplinks: string[] = [];
  private links = 0;
  private readonly lan: string;
  private readonly onExit = () => this.destroySync();

  private constructor() {
    this.lan = this.name('lan');
    process.once('exit', this.onExit);
  }

  name(short: string): string {
    return `drv${this.id}${short}`;
  }

  static async create(): Promise<Lab> {
    reapStaleLabs();
    const lab = new Lab();
    try {
      mkdirSync(RECORDS, { recursive: true });
      writeFileSync(join(RECORDS, lab.id), `${process.pid}\n`);
    } catch {
      /* not root: no namespaces either */
    }
    await lab.addNamespace(lab.lan);
    await run('ip', ['-n', lab.lan, 'link', 'add', 'br0', 'type', 'bridge']);
    // No spanning tree delay: the ports forward at once.
    await run('ip', ['-n', lab.lan, 'link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await run('ip', ['-n', lab.lan, 'link', 'set', 'br0', 'up']);
    return lab;
  }

  private async addNamespace(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** A host on the shared bridge: its own namespace with `ifname`, optional MAC and address. */
  async host(short: string, o: { ifname?: string; mac?: string; addr?: string } = {}): Promise<string> {
    const ns = this.name(short);
    if (!this.namespaces.includes(ns)) await this.addNamespace(ns);
    const ifname = o.ifname ?? 'eth0';
    const peer = `p${this.id}${this.links++}`;
    await run('ip', ['link', 'add', ifname, 'netns', ns, 'type', 'veth', 'peer', 'name', peer, 'netns', this.lan]);
    if (o.mac) await run('ip', ['-n', ns, 'link', 'set', ifname, 'address', o.mac]);
    if (o.addr) await run('ip', ['-n', ns, 'addr', 'add', o.addr, 'dev', ifname]);
    await run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    await run('ip', ['-n', this.lan, 'link', 'set', peer, 'master', 'br0']);
    await run('ip', ['-n', this.lan, 'link', 'set', peer, 'up']);
    return ns;
  }

  /** A veth from the namespace this process runs in onto the bridge (the demo's controller). */
  async uplink(o: { addr: string }): Promise<string> {
    const ifname = `drv${this.id}u`;
    const peer = `p${this.id}${this.links++}`;
    await run('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', peer, 'netns', this.lan]);
    this.uplinks.push(ifname);
    await run('ip', ['addr', 'add', o.addr, 'dev', ifname]);
    await run('ip', ['link', 'set', ifname, 'up']);
    await run('ip', ['-n', this.lan, 'link', 'set', peer, 'master', 'br0']);
    await run('ip', ['-n', this.lan, 'link', 'set', peer, 'up']);
    return ifname;
  }

  /** A point-to-point cable between two hosts (a second network segment). */
  async cable(a: { short: string; ifname: string; mac?: string; addr?: string }, b: { short: string; ifname: string; mac?: string; addr?: string }): Promise<void> {
    for (const side of [a, b]) if (!this.namespaces.includes(this.name(side.short))) await this.addNamespace(this.name(side.short));
    await run('ip', ['link', 'add', a.ifname, 'netns', this.name(a.short), 'type', 'veth', 'peer', 'name', b.ifname, 'netns', this.name(b.short)]);
    for (const side of [a, b]) {
      const ns = this.name(side.short);
      if (side.mac) await run('ip', ['-n', ns, 'link', 'set', side.ifname, 'address', side.mac]);
      if (side.addr) await run('ip', ['-n', ns, 'addr', 'add', side.addr, 'dev', side.ifname]);
      await run('ip', ['-n', ns, 'link', 'set', side.ifname, 'up']);
    }
  }

  /** Starts a long-running process inside a host; stopped by destroy(). */
  spawn(short: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name(short), cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    return p;
  }

  /** Runs a command inside a host to completion. */
  async exec(short: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn('ip', ['netns', 'exec', this.name(short), cmd, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => p.kill('SIGKILL'), opts.timeout ?? 60_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      p.stdin.end(opts.input ?? '');
    });
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : null)));
    this.destroySync();
  }

  private destroySync(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const link of this.uplinks.splice(0)) {
      try {
        execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' });
      } catch {
        /* went with its namespace */
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    rmSync(join(RECORDS, this.id), { force: true });
    process.off('exit', this.onExit);
  }
}
