/**
 * The HTTP server: /health, the JSON API (/api/v1), the classic device endpoint (/smsc.php, /send), the A2P
 * endpoint (/sms/v1/sms), and the web pages (public/, with the codec from the project's own build at /codec/).
 * Every error is JSON with a status that says whose fault it is; a 500 is logged and never shows internals.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { countSegments } from '../modem/pdu/index.js';
import type { Dispatcher } from '../scheduler/dispatcher.js';
import type { Storage } from '../sql/storage.js';
import { apiRouter } from './api.js';
import { CLASSIC_PATHS, a2pRouter, classicError, classicRouter } from './classic.js';
import { type Services, bodyParsers, errorAnswer } from './http.js';
import { bad, optString } from './requests.js';
import { PROJECT_ROOT, VERSION } from './version.js';

/** What the routes work with; a bare server (no storage) answers /health and /api/v1/segments only. */
export interface AppContext {
  storage?: Storage;
  dispatcher?: Dispatcher;
  services?: Services;
  log?: (line: string) => void;
}

/** Headers for every answer: no sniffing, no framing, scripts and styles from this origin only. */
function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  );
  next();
}

export function createApp(context: AppContext = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const trust = context.services?.config.trustProxy.trim();
  if (trust) app.set('trust proxy', /^\d+$/.test(trust) ? Number(trust) : trust.split(/\s*,\s*/));
  const started = Date.now();
  const storage = context.services?.storage ?? context.storage;
  const dispatcher = context.services?.dispatcher ?? context.dispatcher;
  const log = context.log ?? ((line: string) => console.error(line));

  app.use(securityHeaders);
  app.use(bodyParsers());

  /**
   * Liveness and readiness: 200 when the database answers and the dispatcher's ticks run (503 otherwise);
   * /health/ready also needs a healthy channel (a gateway without one accepts messages but sends none).
   */
  const health = async (ready: boolean, res: Response) => {
    const body: Record<string, unknown> = { status: 'ok', version: VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) };
    const problems: string[] = [];
    if (storage) {
      try {
        body.queue = await storage.countByState();
      } catch (error) {
        problems.push(`database: ${(error as Error).message}`);
      }
    }
    if (dispatcher) {
      body.channels = dispatcher.channels.map((c) => ({ port: c.sender.label, simId: c.simId, healthy: c.healthy, busy: c.busy }));
      if (!dispatcher.alive()) problems.push('dispatcher: its ticks have stopped');
      if (ready && !dispatcher.channels.some((c) => c.healthy && c.sender.isOpen)) problems.push('channels: none is healthy');
    }
    if (problems.length > 0) {
      body.status = 'unavailable';
      body.problems = problems;
    }
    res.status(problems.length > 0 ? 503 : 200).json(body);
  };
  app.get('/health', (_req, res) => health(false, res));
  app.get('/health/ready', (_req, res) => health(true, res));

  const metrics = context.services?.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.setHeader('Content-Type', metrics.registry.contentType);
      res.send(await metrics.registry.metrics());
    });
  }

  /** What the send form shows while typing: encoding, parts, units left in the last part. */
  app.get('/api/v1/segments', (req, res) => {
    const text = optString(req.query.text, 'text');
    if (text === undefined) throw bad('text must be given once, as a string', 'text');
    const encoding = optString(req.query.encoding, 'encoding') ?? 'auto';
    if (encoding !== 'auto' && encoding !== 'gsm7' && encoding !== 'ucs2') throw bad('encoding must be auto, gsm7 or ucs2', 'encoding');
    res.json(countSegments(text, { encoding, concat16: req.query.concat16 === 'true' }));
  });

  if (context.services) {
    app.use('/api/v1', apiRouter(context.services));
    app.use(classicRouter(context.services));
    app.use(a2pRouter(context.services));
  }

  // The web pages, and the codec they count with: the very modules the gateway encodes with, as built.
  const root = PROJECT_ROOT;
  const codec = join(root, 'dist', 'modem');
  app.use('/codec/pdu', express.static(join(codec, 'pdu'), { index: false, extensions: false }));
  app.get('/codec/errors.js', (_req, res) => res.sendFile(join(codec, 'errors.js')));
  app.use(express.static(join(root, 'public'), { index: 'index.html' }));

  app.use((req, res) => {
    res.status(404).json({ error: 'NOT_FOUND', description: `no route for ${req.method} ${req.path}` });
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const answer = errorAnswer(error);
    // A device on the classic endpoint reads the classic shape, even for what failed before its route (encoding).
    if (answer && CLASSIC_PATHS.includes(req.path)) {
      classicError(res, error);
      return;
    }
    if (answer) {
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
      res.status(answer.status).json(answer.body);
      return;
    }
    log(`smsgate: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    res.status(500).json({ error: 'INTERNAL', description: 'internal error; see the server log' });
  });
  return app;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0 = any free port) and resolves once it accepts connections. */
export function startServer(host: string, port: number, context: AppContext = {}): Promise<RunningServer> {
  const app = createApp(context);
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        server,
        url: `http://${shownHost}:${address.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
