// The snmp-poe driver: a Pi on a PoE switch port, switched through the standard POWER-ETHERNET-MIB
// (RFC 3621) column pethPsePortAdminEnable = 1.3.6.1.2.1.105.1.1.1.3.<group>.<port>, a TruthValue:
// true(1) delivers power, false(2) stops it. It runs Debian's net-snmp tools with numeric OIDs
// (no MIB files needed: Debian ships without the IETF MIBs):
//   snmpset -v2c -Oqve -t S -r R udp:HOST:PORT 1.3.6.1.2.1.105.1.1.1.3.G.P i 1|2
//   snmpget -v2c -Oqve -t S -r R udp:HOST:PORT 1.3.6.1.2.1.105.1.1.1.3.G.P
// Secrets never go on the command line (any local user can read /proc/*/cmdline): the community
// or the v3 user and passphrases go into a snmp.conf in a private directory (0700, file 0600) that
// the tools read through SNMPCONFPATH, removed after each call.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SnmpPoePowerConfig } from '../config.js';
import { offPauseOn } from '../cycle.js';
import { configError, powerFailed, tail } from '../failures.js';
import { exitText, runCommand } from '../process.js';
import { readSecret } from '../secrets.js';
import type { DriverContext, PowerDriver, PowerState, PowerTarget } from '../types.js';

export const PETH_PSE_PORT_ADMIN_ENABLE = '1.3.6.1.2.1.105.1.1.1.3';

/** snmp.conf lines holding the credentials; the directives are net-snmp's defaults for its tools. */
function credentialLines(cfg: SnmpPoePowerConfig): string[] {
  const noLineBreak = (value: string, field: string): string => {
    if (/[\r\n]/.test(value) || value.trim() !== value) throw configError(`power.${field}`, 'must not contain line breaks or surrounding spaces');
    return value;
  };
  if ((cfg.version ?? 'v2c') === 'v2c') {
    const community = readSecret(cfg.community, cfg.communityFile, 'communityFile');
    if (community === undefined) throw configError('power.community', 'is required for SNMP v2c (or communityFile)');
    return [`defCommunity ${noLineBreak(community, 'community')}`];
  }
  const auth = readSecret(cfg.authPassword, cfg.authPasswordFile, 'authPasswordFile');
  const priv = readSecret(cfg.privPassword, cfg.privPasswordFile, 'privPasswordFile');
  const lines = [`defSecurityName ${noLineBreak(cfg.user!, 'user')}`, `defSecurityLevel ${auth === undefined ? 'noAuthNoPriv' : priv === undefined ? 'authNoPriv' : 'authPriv'}`];
  if (auth !== undefined) lines.push(`defAuthType ${cfg.authProtocol ?? 'SHA'}`, `defAuthPassphrase ${noLineBreak(auth, 'authPassword')}`);
  if (priv !== undefined) lines.push(`defPrivType ${cfg.privProtocol ?? 'AES'}`, `defPrivPassphrase ${noLineBreak(priv, 'privPassword')}`);
  return lines;
}

export class SnmpPoeDriver implements PowerDriver {
  readonly name = 'snmp-poe';
  private readonly oid: string;
  private readonly agent: string;

  constructor(
    private readonly cfg: SnmpPoePowerConfig,
    private readonly ctx: DriverContext,
  ) {
    this.oid = `${PETH_PSE_PORT_ADMIN_ENABLE}.${cfg.group ?? 1}.${cfg.ifPort}`;
    // A bracketed host is an IPv6 literal; net-snmp wants the transport named for it.
    this.agent = `${cfg.host.startsWith('[') ? 'udp6' : 'udp'}:${cfg.host}:${cfg.port ?? 161}`;
  }

  private async snmp(tool: 'snmpset' | 'snmpget', value?: 1 | 2): Promise<string> {
    const retries = this.cfg.retries ?? 1;
    // Leave the tool time to report its own "Timeout: No Response" before the hard limit kills it.
    const perTry = Math.max(0.2, Math.floor((this.ctx.timeoutMs * 0.8) / (retries + 1) / 100) / 10);
    const dir = mkdtempSync(join(tmpdir(), 'drover-snmp-'));
    try {
      // net-snmp creates this in its persistent directory and says so on stderr; made here, it stays quiet.
      mkdirSync(join(dir, 'cert_indexes'), { mode: 0o700 });
      writeFileSync(join(dir, 'snmp.conf'), ['mibs :', ...credentialLines(this.cfg), ''].join('\n'), { mode: 0o600 });
      // Ours comes last so its defaults win over the system's and the user's snmp.conf.
      const searchPath = this.ctx.env.SNMPCONFPATH ?? ['/etc/snmp', '/usr/share/snmp', '/usr/lib/snmp', join(this.ctx.env.HOME ?? homedir(), '.snmp')].join(':');
      const argv = [tool, this.cfg.version === 'v3' ? '-v3' : '-v2c', '-Oqve', '-t', String(perTry), '-r', String(retries), this.agent, this.oid, ...(value !== undefined ? ['i', String(value)] : [])];
      const r = await runCommand(argv, {
        driver: this.name,
        env: { ...this.ctx.env, SNMPCONFPATH: `${searchPath}:${dir}`, SNMP_PERSISTENT_DIR: dir },
        timeoutMs: this.ctx.timeoutMs,
      });
      const what = `${tool} ${this.agent} ${this.oid}${value !== undefined ? ` = ${value}` : ''}`;
      if (r.code !== 0) {
        const hint = /Timeout/.test(r.stderr) && this.cfg.version !== 'v3' ? ' (a wrong community looks the same: the agent stays silent)' : '';
        throw powerFailed(this.name, `${what} failed (${exitText(r)}): ${tail(r.stderr || r.stdout) || 'no output'}${hint}`);
      }
      const out = r.stdout.trim();
      if (/^No Such (Instance|Object)/.test(out)) throw powerFailed(this.name, `${what}: the switch has no such port (${out}); check group and ifPort`);
      return out;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async on(): Promise<void> {
    await this.snmp('snmpset', 1);
  }

  async off(): Promise<void> {
    await this.snmp('snmpset', 2);
  }

  cycle(t: PowerTarget): Promise<void> {
    return offPauseOn(t, () => this.off(), () => this.on(), this.ctx.cycleDelayMs);
  }

  async status(): Promise<PowerState> {
    const v = await this.snmp('snmpget');
    return v === '1' || v === 'true' ? 'on' : v === '2' || v === 'false' ? 'off' : 'unknown';
  }
}
