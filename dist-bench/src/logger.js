import { pino } from 'pino';
/**
 * JSON logs on stdout. Authorization headers and anything named like a credential are redacted as a
 * second line of defence; the first is never passing credentials to a logger at all.
 */
export function createLogger(level, destination) {
    return pino({
        level,
        base: { service: 'switchyard' },
        redact: {
            paths: [
                'req.headers.authorization',
                'headers.authorization',
                '*.refreshToken',
                '*.clientSecret',
                '*.accessToken',
                '*.token',
                '*.authUrl',
                '*.sfdxAuthUrl',
            ],
            censor: '[redacted]',
        },
    }, destination);
}
