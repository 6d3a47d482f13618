import pino, { type Logger } from 'pino';

/**
 * JSON logs (one object per line) for machines; pretty ones when stdout is a terminal.
 * Fields that could carry secrets are censored wherever they appear.
 */
export function createLogger(level: string, pretty = Boolean(process.stdout.isTTY)): Logger {
  return pino({
    level,
    base: { service: 'strata-controller' },
    redact: {
      paths: ['password', 'token', 'secret', 'privateKey', '*.password', '*.token', '*.secret', '*.privateKey', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } } : {}),
  });
}
