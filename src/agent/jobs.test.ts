import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { JobRunner, type JobRequest, type OutputStream } from './jobs.js';

const dirs: string[] = [];
const runners: JobRunner[] = [];
after(() => {
  for (const r of runners) r.cancelAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'drover-agent-jobs-'));
  dirs.push(d);
  return d;
}

function runner(opts: ConstructorParameters<typeof JobRunner>[0] = {}): JobRunner {
  const r = new JobRunner({ commands: { reboot: ['true'], shutdown: ['true'] }, ...opts });
  runners.push(r);
  return r;
}

async function run(r: JobRunner, kind: string, params: unknown, timeoutMs = 10_000) {
  const chunks: { stream: OutputStream; data: string }[] = [];
  const req: JobRequest = { job: 'job_t', kind, params, timeoutMs };
  const outcome = await r.run(req, (stream, data) => chunks.push({ stream, data }));
  return { ...outcome, chunks };
}

/** A fake system tool on a private PATH that logs its argv. */
function fakeTool(dir: string, name: string, script: string): void {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${script}\n`);
  chmodSync(p, 0o755);
}

/** Running (a zombie counts as dead: in a container PID 1 may never reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('JobRunner exec', () => {
  it('runs argv without a shell: metacharacters are plain arguments', async () => {
    const r = await run(runner(), 'exec', { argv: ['echo', '$HOME', '; ls', '`id`'] });
    assert.equal(r.result.ok, true);
    assert.equal(r.result.exitCode, 0);
    assert.equal(r.result.output, '$HOME ; ls `id`\n');
  });

  it('runs sh through /bin/sh -c with env, streams stdout and stderr, reports the exit code', async () => {
    const r = await run(runner(), 'exec', { sh: 'echo "$GREETING"; echo oops >&2; exit 7', env: { GREETING: 'hi' } });
    assert.equal(r.result.ok, false);
    assert.equal(r.result.exitCode, 7);
    assert.match(r.result.error!, /code 7/);
    assert.deepEqual(
      r.chunks.map((c) => c.stream).sort(),
      ['stderr', 'stdout'],
    );
    assert.equal(r.chunks.filter((c) => c.stream === 'stdout').map((c) => c.data).join(''), 'hi\n');
    assert.equal(r.chunks.filter((c) => c.stream === 'stderr').map((c) => c.data).join(''), 'oops\n');
    assert.ok(r.result.durationMs >= 0);
  });

  it('streams output as it comes, before the process ends', async () => {
    const jr = runner({ outputFlushMs: 20 });
    const times: number[] = [];
    const t0 = performance.now();
    const res = await jr.run({ job: 'j', kind: 'exec', params: { sh: 'echo one; sleep 0.4; echo two' }, timeoutMs: 5000 }, () => times.push(performance.now() - t0));
    assert.equal(res.result.ok, true);
    assert.equal(times.length, 2);
    assert.ok(times[0]! < 300 && times[1]! >= 350, `chunks at ${times.map(Math.round).join(', ')} ms`);
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'pid');
    const t0 = performance.now();
    const r = await run(runner({ killGraceMs: 300 }), 'exec', { sh: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 300 });
    assert.ok(performance.now() - t0 < 3000);
    assert.equal(r.result.ok, false);
    assert.match(r.result.error!, /Timed out/);
    assert.equal(r.result.exitCode, null);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(alive(pid), false, 'the background sleep died with its group');
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const t0 = performance.now();
    const r = await run(runner({ killGraceMs: 200 }), 'exec', { sh: "trap '' TERM; while :; do sleep 0.05; done", timeoutMs: 200 });
    assert.equal(r.result.ok, false);
    assert.ok(performance.now() - t0 < 2000);
  });

  it('does not wait for a daemonized grandchild that keeps the pipes open', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'pid');
    const t0 = performance.now();
    const r = await run(runner(), 'exec', { sh: `sleep 20 & echo $! > ${pidFile}; echo started` });
    assert.equal(r.result.ok, true);
    assert.equal(r.result.output, 'started\n');
    assert.ok(performance.now() - t0 < 3000);
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
  });

  it('keeps only the tail of long output in the result', async () => {
    const r = await run(runner({ outputTailChars: 1000 }), 'exec', { sh: 'i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done' });
    assert.equal(r.result.ok, true);
    assert.equal(r.result.output!.length, 1000);
    assert.ok(r.result.output!.endsWith('line2999\n'));
    // All of it was streamed, coalesced into few chunks.
    const streamed = r.chunks.map((c) => c.data).join('');
    assert.ok(streamed.startsWith('line0\nline1\n') && streamed.endsWith('line2999\n'));
    assert.ok(r.chunks.length < 100, `${r.chunks.length} chunks`);
  });

  it('a missing program or bad params are a failed result, not a throw', async () => {
    const r1 = await run(runner(), 'exec', { argv: ['/nonexistent/prog'] });
    assert.equal(r1.result.ok, false);
    assert.match(r1.result.error!, /Cannot run \/nonexistent\/prog/);
    const r2 = await run(runner(), 'exec', { argv: ['true'], sh: 'true' });
    assert.match(r2.result.error!, /exactly one/);
    const r3 = await run(runner(), 'exec', { argv: [] });
    assert.match(r3.result.error!, /non-empty list/);
    const r4 = await run(runner(), 'exec', null);
    assert.equal(r4.result.ok, false);
  });
});

describe('JobRunner write-file', () => {
  it('writes atomically with the given mode, creating the directory', async () => {
    const dir = tempDir();
    const path = join(dir, 'etc/app/config.txt');
    const r = await run(runner(), 'write-file', { path, contentB64: Buffer.from('hello\n').toString('base64'), mode: 0o600 });
    assert.equal(r.result.ok, true, r.result.error);
    assert.equal(readFileSync(path, 'utf8'), 'hello\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.match(r.result.output!, /wrote 6 bytes/);
  });

  it('replacing a file keeps its mode unless told, and leaves no temp files', async () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    writeFileSync(path, 'old');
    chmodSync(path, 0o640);
    const r = await run(runner(), 'write-file', { path, contentB64: Buffer.from('new').toString('base64') });
    assert.equal(r.result.ok, true);
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.equal(statSync(path).mode & 0o777, 0o640);
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('refuses relative paths, "..", bad base64 and bad modes', async () => {
    const r = runner();
    const b64 = Buffer.from('x').toString('base64');
    for (const path of ['relative/file', '/tmp/../etc/passwd', '/tmp/dir/']) {
      const res = await run(r, 'write-file', { path, contentB64: b64 });
      assert.equal(res.result.ok, false, path);
      assert.match(res.result.error!, /absolute file path/);
    }
    assert.match((await run(r, 'write-file', { path: '/tmp/x', contentB64: 'not base64!' })).result.error!, /base64/);
    assert.match((await run(r, 'write-file', { path: '/tmp/x', contentB64: b64, mode: 0o10000 })).result.error!, /mode/);
  });
});

describe('JobRunner system jobs', () => {
  it('restart-unit runs systemctl restart -- UNIT and validates the name', async () => {
    const bin = tempDir();
    fakeTool(bin, 'systemctl', 'echo "args: $*"');
    const r = runner({ path: bin });
    const ok = await run(r, 'restart-unit', { unit: 'nginx.service' });
    assert.equal(ok.result.ok, true);
    assert.equal(ok.result.output, 'args: restart -- nginx.service\n');
    for (const unit of ['--force', 'a b', 'x;reboot', '', 42]) {
      const bad = await run(r, 'restart-unit', { unit });
      assert.equal(bad.result.ok, false, String(unit));
      assert.match(bad.result.error!, /unit name/);
    }
  });

  it('logs runs journalctl with -n, -u, --no-pager, short-iso; a missing journalctl is a clear error', async () => {
    const bin = tempDir();
    fakeTool(bin, 'journalctl', 'echo "$*"');
    const ok = await run(runner({ path: bin }), 'logs', { lines: 50, unit: 'drover-agent' });
    assert.equal(ok.result.ok, true);
    assert.equal(ok.result.output, '-n 50 --no-pager -o short-iso -u drover-agent\n');
    const dflt = await run(runner({ path: bin }), 'logs', {});
    assert.equal(dflt.result.output, '-n 200 --no-pager -o short-iso\n');
    const missing = await run(runner({ path: tempDir() }), 'logs', { lines: 10 });
    assert.equal(missing.result.ok, false);
    assert.match(missing.result.error!, /journalctl is not installed/);
    assert.match((await run(runner({ path: bin }), 'logs', { lines: 0 })).result.error!, /lines/);
  });

  it('reboot and shutdown answer first and run the injected command after the delay', async () => {
    const dir = tempDir();
    const r = runner({ commands: { reboot: ['touch', join(dir, 'reboot')], shutdown: ['touch', join(dir, 'shutdown')] }, powerDelayMs: 100 });
    for (const kind of ['reboot', 'shutdown'] as const) {
      const res = await run(r, kind, {});
      assert.equal(res.result.ok, true);
      assert.ok(res.afterReport, 'the command waits for the report');
      assert.equal(existsSync(join(dir, kind)), false);
      res.afterReport!();
      assert.equal(existsSync(join(dir, kind)), false, 'not before the delay');
      for (let i = 0; i < 100 && !existsSync(join(dir, kind)); i++) await new Promise((res2) => setTimeout(res2, 10));
      assert.equal(existsSync(join(dir, kind)), true);
    }
  });

  it('next-boot-image reboots only when asked', async () => {
    const dir = tempDir();
    const r = runner({ commands: { reboot: ['touch', join(dir, 'reboot')] }, powerDelayMs: 10 });
    const stay = await run(r, 'next-boot-image', { imageId: 'img_1' });
    assert.equal(stay.result.ok, true);
    assert.equal(stay.afterReport, undefined);
    const go = await run(r, 'next-boot-image', { imageId: 'img_1', reboot: true });
    assert.equal(go.result.ok, true);
    go.afterReport!();
    for (let i = 0; i < 100 && !existsSync(join(dir, 'reboot')); i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(existsSync(join(dir, 'reboot')), true);
    assert.equal((await run(r, 'next-boot-image', {})).result.ok, false);
  });

  it('an unknown kind is a failed result naming the kind', async () => {
    const r = await run(runner(), 'format-disk', {});
    assert.equal(r.result.ok, false);
    assert.match(r.result.error!, /Unknown job kind "format-disk"/);
  });
});
