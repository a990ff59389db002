import type { Express } from 'express';

/**
 * One concern's routes on the `serve` server: health, the HTTP API, Slack's HTTP mode, and
 * later GitHub webhooks. Each module parses its own bodies (webhooks verify a signature over
 * the raw bytes, so there is no global body parser); `serve.ts` lists the modules in one place.
 */
export interface RouteModule {
  /** Shown in the start line and logs: `health`, `api`, `slack`. */
  name: string;
  mount(app: Express): void;
}
