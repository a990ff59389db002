import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEMO_CODER_TURNS } from '../../cli/demo/demo-script.js';

const run = promisify(execFile);

const Started = z.object({ type: z.literal('demo.started'), processes: z.array(z.object({ name: z.string(), pid: z.number() })) });
const Summary = z.object({
  taskId: z.string(),
  state: z.string(),
  stages: z.array(z.object({ stage: z.string(), outcome: z.string().nullable(), durationMs: z.number().nullable() })),
  reviewRounds: z.number(),
  usage: z.object({ calls: z.number(), inputTokens: z.number(), cachedTokens: z.number(), outputTokens: z.number() }),
  target: z.object({ branch: z.string(), head: z.string(), testsPass: z.boolean() }),
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('stagegate demo', () => {
  it('runs the sample task to done with its own NATS, prints JSON lines and leaves no process behind', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, STAGEGATE_USER: 'demo-user' };
    const { stdout } = await run(process.execPath, ['bin/stagegate.js', 'demo', '--json'], { env, timeout: 120_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);

    const started = Started.parse(lines[0]);
    expect(started.processes.map((p) => p.name)).toEqual(['orchestrator', 'planner', 'coder', 'reviewer', 'deployer']);
    expect(new Set(started.processes.map((p) => p.pid)).size).toBe(5);

    const summary = Summary.parse(lines.at(-1));
    expect(summary.state).toBe('done');
    expect(summary.stages.map((s) => s.stage)).toEqual(['plan', 'implement', 'review', 'implement', 'review', 'deploy']);
    expect(summary.reviewRounds).toBe(2);
    // One plan, two reviews of two calls each (the verdict and the security review), the coder's turns.
    expect(summary.usage.calls).toBe(5 + DEMO_CODER_TURNS.firstRound + DEMO_CODER_TURNS.secondRound);
    expect(summary.usage.cachedTokens).toBeGreaterThan(0);
    expect(summary.target).toEqual({ branch: 'main', head: expect.any(String), testsPass: true });

    const events = lines.slice(1, -1).filter((l): l is { type: string; autoApproved?: string[] } => typeof l === 'object' && l !== null && 'type' in l);
    expect(events.flatMap((e) => e.autoApproved ?? [])).toEqual(['plan', 'deploy']);
    for (const p of started.processes) expect(isAlive(p.pid), `${p.name} (pid ${p.pid}) still running`).toBe(false);
  });
});
