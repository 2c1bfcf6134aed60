// The agent's logger: JSON lines on stderr (journald keeps them). Not pino, so the bundled agent
// stays small; the interface is the subset of pino's that the agent uses, so the controller's
// virtual fleet can hand its own pino logger in instead.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface AgentLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };
/** Keys whose values never reach a log line, whoever passes them (the device token above all). */
const SECRET = /^(token|authorization|password|secret)$/i;

export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(RANK, s);
}

export function createAgentLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): AgentLogger {
  const min = RANK[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>) => (fields: object, msg: string) => {
    if (RANK[lvl] < min) return;
    const rec: Record<string, unknown> = { level: lvl, time: new Date().toISOString(), svc: 'drover-agent', msg };
    for (const [k, v] of Object.entries(fields)) rec[k] = SECRET.test(k) ? '[redacted]' : v instanceof Error ? v.message : v;
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      line = JSON.stringify({ level: lvl, time: rec.time, svc: 'drover-agent', msg });
    }
    write(`${line}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** For tests and embedders that want quiet. */
export const silentLogger: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };
