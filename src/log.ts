// Structured logs: pino JSON lines on stdout, one line per event that matters. Secrets never go
// in: tokens and passwords are redacted even if some code tries.
import { pino, type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'drover' },
      redact: { paths: ['req.headers.authorization', '*.password', '*.token', '*.secret', 'password', 'token', 'secret'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
