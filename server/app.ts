/**
 * The HTTP server. So far it answers `GET /health` (with the queue and the channels) and the segment counter; the
 * device endpoint, the JSON API and the web form come with issue 5. Routes stay thin: validate, call one function, map the result.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { SmsgateError } from '../modem/errors.js';
import { countSegments } from '../modem/pdu/index.js';
import type { Dispatcher } from '../scheduler/dispatcher.js';
import type { Storage } from '../sql/storage.js';
import { VERSION } from './version.js';

/** What the routes work with; absent parts (a bare server in tests) leave their routes out of /health. */
export interface AppContext {
  storage?: Storage;
  dispatcher?: Dispatcher;
}

export function createApp(context: AppContext = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const started = Date.now();

  app.get('/health', async (_req, res) => {
    const body: Record<string, unknown> = { status: 'ok', version: VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) };
    if (context.storage) body.queue = await context.storage.countByState();
    if (context.dispatcher) {
      body.channels = context.dispatcher.channels.map((c) => ({ port: c.sender.label, simId: c.simId, healthy: c.healthy, busy: c.busy }));
    }
    res.json(body);
  });

  /** What the send form shows while typing: encoding, parts, units left in the last part. */
  app.get('/api/v1/segments', (req, res) => {
    const { text, encoding } = req.query;
    if (typeof text !== 'string') throw new SmsgateError('BAD_MESSAGE', 'text must be given once, as a string', 'text');
    if (encoding !== undefined && encoding !== 'auto' && encoding !== 'gsm7' && encoding !== 'ucs2') {
      throw new SmsgateError('BAD_MESSAGE', 'encoding must be auto, gsm7 or ucs2', 'encoding');
    }
    res.json(countSegments(text, { encoding: encoding ?? 'auto', concat16: req.query.concat16 === 'true' }));
  });

  app.use((req, res) => {
    res.status(404).json({ error: 'NOT_FOUND', description: `no route for ${req.method} ${req.path}` });
  });

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof SmsgateError) {
      res.status(400).json({ error: error.code, field: error.field ?? null, description: error.message });
      return;
    }
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: 'BAD_REQUEST', description: (error as Error).message });
      return;
    }
    console.error('smsgate: unexpected error:', error);
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
