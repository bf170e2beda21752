// The HTTP server: GraphQL (Yoga) at /graphql, health endpoints, and a JSON 404 for everything else.
// Webhook and artifact routes join here in later work; Caddy sits in front in production.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createYoga } from 'graphql-yoga';
import { createContext } from '../context.js';
import { runWithRequestId } from '../request-context.js';
import { getSchema } from '../schema/index.js';
import { useAuthentication } from './authentication.js';
import { checkReadiness } from './health.js';
import { maskError } from './mask-error.js';
/** Accept a caller's (Caddy's) request id when it looks like one; otherwise make our own. */
function requestIdFrom(req) {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
}
function sendJson(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
}
export function createApp(options) {
    const { services, redis, logger } = options;
    const yoga = createYoga({
        schema: getSchema(),
        graphqlEndpoint: '/graphql',
        graphiql: options.graphiql ? { title: 'Switchyard', headers: '{\n  "Authorization": "Bearer syt_…"\n}' } : false,
        landingPage: false,
        maskedErrors: { maskError },
        logging: {
            debug: (...args) => logger.debug(args.map(String).join(' ')),
            info: (...args) => logger.info(args.map(String).join(' ')),
            warn: (...args) => logger.warn(args.map(String).join(' ')),
            error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
        },
        context: ({ request, requestId }) => createContext({ authorization: request.headers.get('authorization'), requestId, services, logger }),
        plugins: [useAuthentication()],
    });
    const server = createServer((req, res) => {
        const requestId = requestIdFrom(req);
        res.setHeader('x-request-id', requestId);
        const path = (req.url ?? '/').split('?')[0];
        runWithRequestId(requestId, () => {
            if (path === '/graphql') {
                void yoga(req, res, { requestId });
                return;
            }
            if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
                sendJson(res, 200, { status: 'ok' });
                return;
            }
            if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
                void checkReadiness(services.prisma, redis).then((readiness) => {
                    sendJson(res, readiness.ready ? 200 : 503, { status: readiness.ready ? 'ready' : 'unavailable', ...readiness });
                });
                return;
            }
            sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `No route for ${req.method} ${path}` } });
        });
    });
    return {
        server,
        yoga,
        listen: (port, host) => new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(port, host, () => {
                server.off('error', reject);
                resolve(server.address());
            });
        }),
        close: () => new Promise((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
        }),
    };
}
