/**
 * The options `stagegate autoscale` and `stagegate up --autoscale` share, parsed once into
 * `AutoscaleSettings` (CLI text is outside data: a bad value is CONFIG_INVALID naming the option).
 */
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { AgentRole } from '../../core/bus/messages.js';
import { StagegateError } from '../../core/errors.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000 } as const;

/** `500ms`, `30s`, `2m` → milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (match === null) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

const duration = (option: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${option} expected a duration such as 500ms, 30s or 2m; got '${text}'` });
      return z.NEVER;
    }
    return ms;
  });

const count = (option: string, least: number) =>
  z.coerce.number<unknown>().int(`${option} expected a whole number`).min(least, `${option} expected ${least} or more`);

export const AutoscaleSettings = z
  .object({
    roles: z.string().transform((text, ctx) => {
      const roles = [...new Set(text.split(',').map((r) => r.trim()).filter((r) => r !== ''))];
      const unknown = roles.filter((r) => !AgentRole.safeParse(r).success);
      if (roles.length === 0 || unknown.length > 0) {
        ctx.addIssue({ code: 'custom', message: `--roles expected roles from ${AgentRole.options.join(', ')}; got '${text}'` });
        return z.NEVER;
      }
      return roles.map((r) => AgentRole.parse(r));
    }),
    min: count('--min', 0),
    max: count('--max', 1),
    cooldown: duration('--cooldown'),
    interval: duration('--interval'),
    jobsPerWorker: count('--jobs-per-worker', 1),
    metrics: z.boolean(),
    metricsPort: z.coerce.number<unknown>().int().min(0).max(65535, '--metrics-port expected a port from 0 to 65535'),
    metricsHost: z.string().min(1),
    metricsOnly: z.boolean().default(false),
  })
  .refine((s) => s.max >= s.min, { message: '--max expected at least --min' })
  .refine((s) => s.interval > 0, { message: '--interval expected more than 0' });
export type AutoscaleSettings = z.infer<typeof AutoscaleSettings>;

/** Adds the shared options; `up` passes `withMetricsOnly: false` (it always runs workers). */
export function addAutoscaleOptions(command: Command, withMetricsOnly = true): Command {
  command
    .addOption(new Option('--roles <list>', 'roles to scale, comma separated').default(AgentRole.options.join(',')))
    .addOption(new Option('--min <n>', 'fewest workers per role').default('1'))
    .addOption(new Option('--max <n>', 'most workers per role').default('8'))
    .addOption(new Option('--cooldown <duration>', 'idle time before workers are stopped, and the least time between changes').default('30s'))
    .addOption(new Option('--interval <duration>', 'how often the backlog is read').default('2s'))
    .addOption(new Option('--jobs-per-worker <n>', 'jobs one worker runs at once (its --concurrency)').default('1'))
    .addOption(new Option('--metrics-port <port>', 'port of GET /metrics (0: any free port)').default('9464'))
    .addOption(new Option('--metrics-host <host>', 'address GET /metrics listens on (0.0.0.0 for a cluster)').default('127.0.0.1'))
    .addOption(new Option('--no-metrics', 'serve no metrics'));
  if (withMetricsOnly) {
    command.addOption(new Option('--metrics-only', 'start no workers: serve the desired counts for a cluster autoscaler'));
  }
  return command;
}

export function parseAutoscaleSettings(options: Record<string, unknown>): AutoscaleSettings {
  const result = AutoscaleSettings.safeParse(options);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) =>
    issue.message.startsWith('--') ? issue.message : `--${String(issue.path[0] ?? 'option').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${issue.message}`,
  );
  throw new StagegateError('CONFIG_INVALID', `invalid autoscale options: ${problems.join('; ')}`);
}
