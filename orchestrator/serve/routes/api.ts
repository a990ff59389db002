/**
 * The HTTP API: `GET /api/tasks`, `POST /api/tasks`, `GET /api/tasks/:id`,
 * `POST /api/tasks/:id/decisions`. Every request carries a bearer token mapped to a principal in
 * config; a task is submitted and a decision made as that principal through the task client,
 * the path every channel takes. A submission names a repository by a URL the workers clone
 * (never a path on their disks) and carries no deploy command: those stay with the CLI's user.
 * 401 no or bad token · 403 the policy does not count the principal (recorded as not counted)
 * · 404 unknown task · 409 not at that gate, already decided, already approved · 400 bad body
 * · 429 a limit refuses the submission (with Retry-After when it resets at a time).
 */
import express from 'express';
import { z } from 'zod';
import { CommitSha, Gate, TaskId, type TaskSpec } from '../../../core/bus/messages.js';
import type { ApiToken } from '../../../core/config.js';
import type { Logger } from '../../../core/log.js';
import type { RedactSecrets } from '../../../core/security/redact-secrets.js';
import type { GatePolicies } from '../../../core/policy.js';
import { parseAt } from '../../../core/parse.js';
import { withStageTimeouts } from '../../timers/stage-timeouts.js';
import { LimitReached, retryAfterSeconds } from '../../limits/limit-reached.js';
import type { TaskClient } from '../../task-client.js';
import { requireBearer } from '../bearer-auth.js';
import { HttpError } from '../http-errors.js';
import type { RouteModule } from '../route-module.js';
import { taskDetail, taskSummary } from '../task-view.js';

export const DecisionRequest = z
  .strictObject({
    gate: Gate,
    decision: z.enum(['approve', 'reject']),
    comment: z.string().min(1).max(10_000).optional(),
    /** The gate visit meant; a decision for a visit that is over gets 409. */
    visit: z.number().int().positive().optional(),
    /** The commit approved; at the deploy gate an approval naming anything but the branch's head gets 403. */
    sha: CommitSha.optional(),
  })
  .refine((d) => d.decision === 'approve' || d.comment !== undefined, {
    path: ['comment'],
    message: 'expected a reason when rejecting: it goes back to the agent',
  });
export type DecisionRequest = z.infer<typeof DecisionRequest>;

const REMOTE_REPO = /^(?:https?:\/\/|ssh:\/\/|git@[^/:\s]+:)\S+$/i;

export const SubmitRequest = z.strictObject({
  repo: z.string().regex(REMOTE_REPO, 'expected a git URL the workers can clone (https://…, ssh://… or git@host:owner/repo.git); a local path is not accepted over the API'),
  title: z.string().min(1, 'expected a title').max(1_000),
  body: z.string().max(100_000).default(''),
  /** Reaches git as an argument: a branch name, never anything that reads as an option. */
  base: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/, 'expected a branch name (letters, digits, . _ / -)').default('main'),
  testCommand: z.string().min(1).optional(),
});
export type SubmitRequest = z.infer<typeof SubmitRequest>;

export interface ApiRoutesDeps {
  client: TaskClient;
  tokens: ReadonlyArray<ApiToken>;
  bodyLimitBytes: number;
  /** What a task submitted over the API is started with: the gate policies and review rounds in config. */
  policies: GatePolicies;
  maxReviewRounds: number;
  /** How long each stage may run (config `stageTimeoutsMs`); absent: no limit. */
  stageTimeoutsMs?: TaskSpec['stageTimeoutsMs'];
  log: Logger;
  /** serve's configured secrets, kept out of the task views it answers with. */
  redact: RedactSecrets;
  /** The clock a 429's Retry-After is counted from. */
  now: () => Date;
}

export function apiRoutes(deps: ApiRoutesDeps): RouteModule {
  const { client, log, redact } = deps;
  const router = express.Router();
  router.use(requireBearer(deps.tokens));

  router.get('/tasks', async (_req, res) => {
    const records = await client.list();
    res.json(redact({ tasks: records.map(taskSummary) }));
  });

  router.post('/tasks', express.json({ limit: deps.bodyLimitBytes }), async (req, res) => {
    if (req.body === undefined) throw new HttpError(400, 'SCHEMA_INVALID', 'expected a JSON body (Content-Type: application/json)');
    const body = parseAt(SubmitRequest, req.body, 'task submission');
    const by = String(res.locals.principal);
    let taskId: string;
    try {
      taskId = await client.submit({ spec: { ...body, ...withStageTimeouts(deps.stageTimeoutsMs), submittedBy: by }, policies: deps.policies, maxReviewRounds: deps.maxReviewRounds });
    } catch (err) {
      if (!(err instanceof LimitReached)) throw err;
      log.info({ by, limit: err.refusal.limit, subject: err.refusal.subject, current: err.refusal.current }, 'api submission refused: a limit is reached');
      const retryAfter = retryAfterSeconds(err.refusal, deps.now());
      throw new HttpError(429, 'LIMIT_REACHED', err.message, { refusal: err.refusal }, retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) });
    }
    log.info({ taskId, by }, 'api task submitted');
    res.status(201).json({ task: { taskId, submittedBy: by } });
  });

  router.get('/tasks/:id', async (req, res) => {
    res.json(redact({ task: taskDetail(await client.get(taskIdOf(req.params.id))) }));
  });

  router.post('/tasks/:id/decisions', express.json({ limit: deps.bodyLimitBytes }), async (req, res) => {
    const taskId = taskIdOf(req.params.id);
    if (req.body === undefined) throw new HttpError(400, 'SCHEMA_INVALID', 'expected a JSON body (Content-Type: application/json)');
    const body = parseAt(DecisionRequest, req.body, 'decision request');
    const by = String(res.locals.principal);
    const answer = await client.decide({
      taskId,
      by,
      via: 'api',
      gate: body.gate,
      decision: body.decision,
      ...(body.comment === undefined ? {} : { comment: body.comment }),
      ...(body.visit === undefined ? {} : { visit: body.visit }),
      ...(body.sha === undefined ? {} : { sha: body.sha }),
    });
    log.info({ taskId, by, gate: body.gate, decision: body.decision, answer: answer.status, counted: answer.status === 'applied' ? answer.counted : undefined }, 'api decision');
    if (answer.status === 'queued') {
      return res.status(202).json({ decision: { ...answer, by, message: 'recorded; no orchestrator has answered yet' } });
    }
    if (!answer.counted) {
      const why = answer.note ?? 'refused by the policy';
      if (answer.refusal === 'repeated') throw new HttpError(409, 'ALREADY_APPROVED', `${why}; nothing changed`);
      throw new HttpError(403, 'FORBIDDEN', `${why}; the decision is recorded as not counted`);
    }
    res.json({ decision: { ...answer, by } });
  });

  return {
    name: 'api',
    mount(app) {
      app.use('/api', router);
    },
  };
}

/** An id that cannot be a task is answered like an unknown one, without a store lookup. */
function taskIdOf(raw: unknown): string {
  const parsed = TaskId.safeParse(raw);
  if (!parsed.success) throw new HttpError(404, 'TASK_UNKNOWN', `unknown task ${String(raw).slice(0, 80)}`);
  return parsed.data;
}
