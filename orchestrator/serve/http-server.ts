/**
 * The express app behind `stagegate serve`: the route modules in the order given, then a
 * JSON 404 for anything else and one error handler that turns thrown errors into JSON bodies.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { httpErrorOf, sendError } from './http-errors.js';
import type { RouteModule } from './route-module.js';

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  log: Logger;
  routes: RouteModule[];
}

export interface RunningHttpServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      log.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'http request');
    });
    next();
  });
  for (const route of options.routes) route.mount(app);
  app.use((req: Request, res: Response) => sendError(res, 404, 'NOT_FOUND', `no route for ${req.method} ${req.path}`));
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const known = httpErrorOf(err);
    if (known !== undefined) {
      res.set(known.headers);
      return sendError(res, known.status, known.code, known.message, known.extra);
    }
    log.error({ method: req.method, path: req.path, err: errorMessage(err) }, 'http request failed');
    sendError(res, 500, 'INTERNAL', 'internal error; the server log has the details');
  });

  const server = createServer(app);
  await listen(server, options.host, options.port);
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeIdleConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
