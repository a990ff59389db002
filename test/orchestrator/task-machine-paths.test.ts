/**
 * Model-based check of the gates: @xstate/graph explores every state the statechart can reach
 * from a realistic set of inbox events (results for the current and for stale jobs, failures,
 * a coder asking to run a command, decisions by approvers and by outsiders, for the right gate
 * and the wrong one, cancels and retries), under several gate policies. Every path found is
 * replayed with `transition()`, then extended by every event, and each step is checked against
 * the gate invariants.
 *
 * States are grouped by what the guards read (state, review round up to the limit, failed stage,
 * counted approvers at each gate's current visit, the command gate's only while the task waits
 * there), which keeps the graph finite; the replay checks that this grouping is exact (the
 * replayed state lands in the group the path claims).
 */
import { getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { Gate, Plan, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { GatePolicies, GatePolicy } from '../../core/policy.js';
import { GATE_STATES, type TaskContext } from '../../core/task-record.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const TASK = 't-model';
const SENT_AT = '2025-03-01T10:00:00.000Z';
const AUTO = 'policy:auto-approve';
const GATES = ['plan', 'review', 'deploy', 'command'] as const satisfies readonly Gate[];
const PRINCIPALS = ['alice', 'bob', 'mallory'] as const;

const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 5, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 'step', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const comments = [{ file: 'a.ts', line: 1, body: 'fix' }];

const manual = (required: number, approvers = ['alice', 'bob']): GatePolicy => ({ approvers, required, autoApprove: false });
const auto: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: true };

interface Scenario {
  name: string;
  policies: GatePolicies;
  maxReviewRounds: number;
  /**
   * The coder never asks to run a command. The command gate at least doubles every group after
   * it, so the two largest scenarios leave it out; in the others without `policies.command`, the
   * deploy policy decides it.
   */
  noCommands?: true;
}

const SCENARIOS: Scenario[] = [
  { name: 'manual gates needing one approval', policies: { plan: manual(1), review: manual(1), deploy: manual(1) }, maxReviewRounds: 1 },
  { name: 'manual gates needing two approvals', policies: { plan: manual(2), review: manual(2), deploy: manual(2) }, maxReviewRounds: 0, noCommands: true },
  { name: 'plan auto-approved, deploy needing two', policies: { plan: auto, review: manual(1), deploy: manual(2) }, maxReviewRounds: 1 },
  { name: 'review and deploy auto-approved', policies: { plan: manual(2), review: auto, deploy: auto }, maxReviewRounds: 0 },
  { name: 'every gate auto-approved', policies: { plan: auto, review: auto, deploy: auto }, maxReviewRounds: 1 },
  { name: 'deploy open to anyone, two required', policies: { plan: manual(1), review: manual(1), deploy: manual(2, ['*']) }, maxReviewRounds: 0, noCommands: true },
  { name: 'commands needing two approvals, deploy one', policies: { plan: manual(1), review: manual(1), deploy: manual(1), command: manual(2) }, maxReviewRounds: 0 },
  { name: 'commands auto-approved, deploy manual', policies: { plan: manual(1), review: manual(1), deploy: manual(1), command: auto }, maxReviewRounds: 0 },
];

function submitFor(scenario: Scenario): TaskSubmit {
  return {
    type: 'task.submit',
    taskId: TASK,
    msgId: 'submit',
    sentAt: SENT_AT,
    spec: { repo: '/tmp/repo', title: 'model', body: '', base: 'main', submittedBy: 'alice' },
    policies: scenario.policies,
    maxReviewRounds: scenario.maxReviewRounds,
  };
}

/**
 * The inbox events that could arrive in this snapshot. `msgId` names the event's meaning, so a
 * path found on one snapshot can be replayed on another in the same group.
 */
function eventsFor(scenario: Scenario, s: Snapshot): TaskEvent[] {
  const { context } = s;
  // In a gate or failed there is no current job: results then carry the last job's id (late duplicates).
  const job = context.currentJobId ?? context.stages.at(-1)?.jobId ?? `${TASK}:plan:0`;
  const stale = `${TASK}:stale:0`;
  const env = (label: string) => ({ taskId: TASK, msgId: label, sentAt: SENT_AT });
  const commandRequest = (jobId: string, tag: string): TaskEvent[] =>
    scenario.noCommands
      ? []
      : [
          {
            type: 'command.approval_requested', ...env(`command.approval_requested@${tag}`), jobId, usage,
            command: 'npm install left-pad', pattern: 'npm install *', branch: 'b', commit: null, notes: 'half done',
          },
        ];
  const results = (jobId: string, tag: string): TaskEvent[] => [
    { type: 'plan.proposed', ...env(`plan.proposed@${tag}`), jobId, usage, plan },
    { type: 'code.committed', ...env(`code.committed@${tag}`), jobId, usage, branch: 'b', commit: 'c1', summary: 's', attempts: 1 },
    { type: 'review.approved', ...env(`review.approved@${tag}`), jobId, usage, verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true },
    { type: 'review.changes_requested', ...env(`review.changes_requested@${tag}`), jobId, usage, verdict: { decision: 'request_changes', summary: 'no', comments }, testsPassed: false },
    { type: 'deploy.succeeded', ...env(`deploy.succeeded@${tag}`), jobId, usage, commit: 'c1', target: 'prod' },
    ...commandRequest(jobId, tag),
    { type: 'job.failed', ...env(`job.failed@${tag}`), jobId, usage, stage: 'implement', reason: 'boom' },
  ];
  const decisions = GATES.flatMap((gate) => [
    ...PRINCIPALS.map((by): TaskEvent => ({ type: 'gate.decide', ...env(`approve:${gate}:${by}`), gate, decision: 'approve', by, via: 'cli' })),
    ...(['alice', 'mallory'] as const).map((by): TaskEvent => ({
      type: 'gate.decide', ...env(`reject:${gate}:${by}`), gate, decision: 'reject', by, via: 'cli', comment: `no from ${by}`,
    })),
  ]);
  return [
    ...results(job, 'current'),
    // A failure that claims a later stage than the job it is for: it must not let a retry skip gates.
    { type: 'job.failed', ...env('job.failed@current-claiming-deploy'), jobId: job, usage, stage: 'deploy', reason: 'boom' },
    ...results(stale, 'stale'),
    ...decisions,
    { type: 'task.cancel', ...env('cancel'), by: 'carol', reason: 'stop' },
    { type: 'task.retry', ...env('retry'), by: 'carol' },
  ];
}

function countedApprovals(c: TaskContext, gate: Gate) {
  return c.decisions.filter(
    (d) => d.gate === gate && d.visit === c.gateVisits[gate] && d.decision === 'approve' && d.counted,
  );
}

const approversOf = (decisions: TaskContext['decisions']) => [...new Set(decisions.map((d) => d.by))].sort();

/**
 * What the guards read; two snapshots in the same group behave alike for every event. Whether a
 * gate was approved at an earlier visit is part of the group too: a chart that wrongly counted
 * such approvals must show it.
 */
function groupOf(s: Snapshot): string {
  const c = s.context;
  const passOnce = GATES.filter((gate) => gate !== 'command');
  return JSON.stringify({
    value: s.value,
    round: Math.min(c.reviewRound, c.maxReviewRounds + 1),
    failedAt: c.error?.stage ?? null,
    approvals: passOnce.map((gate) => approversOf(countedApprovals(c, gate))),
    approvedBefore: passOnce.map((gate) =>
      c.decisions.some((d) => d.gate === gate && d.visit < c.gateVisits[gate] && d.decision === 'approve' && d.counted),
    ),
    implemented: c.attempts.implement > 0,
    command: commandGroupOf(s),
  });
}

/**
 * The command gate's part of the group. At the gate: its approvers at this visit, and whether an
 * earlier visit had any. Away from it, only whether any visit so far had any: no guard reads the
 * approvers there and the next visit starts afresh, and as a coder may ask again and again,
 * keeping them would multiply every later group. Whether a command is left pending (only a
 * cancel at the gate leaves one) and how many were approved (capped) are read by no guard, but
 * are what the gate leaves behind.
 */
function commandGroupOf(s: Snapshot) {
  const c = s.context;
  const atGate = s.value === GATE_STATES.command;
  const visit = c.gateVisits.command;
  return {
    approvals: atGate ? approversOf(countedApprovals(c, 'command')) : null,
    approvedBefore: c.decisions.some(
      (d) => d.gate === 'command' && (atGate ? d.visit < visit : d.visit <= visit) && d.decision === 'approve' && d.counted,
    ),
    pending: c.pendingCommand !== null,
    approvedCommands: Math.min(c.approvedCommands.length, 1),
  };
}

const isAllowed = (policy: GatePolicy, by: string) => policy.approvers.includes('*') || policy.approvers.includes(by);

/** The policy that decides a gate, as documented: without a command policy, the deploy gate's decides commands. */
function policyIn(policies: GatePolicies, gate: Gate): GatePolicy {
  return gate === 'command' ? (policies.command ?? policies.deploy) : policies[gate];
}

function policyOf(c: TaskContext, gate: string): GatePolicy {
  const known = GATES.find((g) => g === gate);
  if (known === undefined) throw new Error(`a decision for gate ${gate}, which this model does not cover`);
  return policyIn(c.policies, known);
}

/** The oracle, written from the policy's meaning rather than from the chart's guards. */
function gateSatisfied(c: TaskContext, gate: (typeof GATES)[number]): boolean {
  const policy = policyOf(c, gate);
  if (c.gateVisits[gate] === 0) return false;
  const approvals = countedApprovals(c, gate);
  if (policy.autoApprove && approvals.some((d) => d.by === AUTO && d.via === 'policy')) return true;
  const people = new Set(approvals.filter((d) => d.by !== AUTO && isAllowed(policy, d.by)).map((d) => d.by));
  return people.size >= policy.required;
}

interface Tally {
  deployEntries: number;
  firstImplementEntries: number;
  refusedDecisions: number;
  /** Returns from the command gate to implementing: by approval (a person's or the policy's), by rejection. */
  commandApproved: number;
  commandRejected: number;
  reached: Set<string>;
  /** Every broken invariant, with the step that broke it; asserted empty at the end. */
  violations: string[];
}

/** Where a replay is: implementedSinceDeployGate says the code changed after the deploy gate last opened. */
interface Walk {
  snapshot: Snapshot;
  implementedSinceDeployGate: boolean;
}

function checkStep(scenario: Scenario, walk: Walk, event: TaskEvent, tally: Tally): Walk {
  const prev = walk.snapshot;
  const [next] = transition(taskMachine, prev, event);
  const where = `${String(prev.value)} --${event.msgId}--> ${String(next.value)}`;
  const violated = (what: string) => tally.violations.push(`${where}: ${what}`);
  const deployGateOpened = next.context.gateVisits.deploy > prev.context.gateVisits.deploy;
  const entered = (state: string) => next.value === state && prev.value !== state;

  let implementedSinceDeployGate = walk.implementedSinceDeployGate;
  if (deployGateOpened) implementedSinceDeployGate = false;
  if (entered('implementing')) implementedSinceDeployGate = true;
  tally.reached.add(String(next.value));

  if (prev.status === 'done' && next !== prev) violated('a final state changed');

  // No decision by someone outside the policy, and no auto-approval the policy does not allow, ever counts.
  for (const d of next.context.decisions.slice(prev.context.decisions.length)) {
    if (!d.counted) {
      tally.refusedDecisions += 1;
      continue;
    }
    const policy = policyOf(next.context, d.gate);
    if (!(d.by === AUTO ? policy.autoApprove : isAllowed(policy, d.by))) violated(`counted ${d.by} at the ${d.gate} gate`);
  }

  if (entered('deploying')) {
    tally.deployEntries += 1;
    // (a) the deploy gate's current visit is satisfied, and opened after the last change to the code…
    if (!gateSatisfied(next.context, 'deploy')) violated('deploy gate not satisfied');
    if (implementedSinceDeployGate) violated('the code changed after the deploy gate');
    // …and the step came through the gate (or re-runs a deploy that failed after passing it).
    const throughGate =
      prev.value === 'awaitingDeployApproval' || (scenario.policies.deploy.autoApprove && deployGateOpened);
    const retryOfDeploy = prev.value === 'failed' && prev.context.error?.stage === 'deploy';
    if (!throughGate && !retryOfDeploy) violated('entered deploying around the deploy gate');
  }

  // (d) the command gate opens only when the current implement job asks to run a command…
  const commandGateOpened = next.context.gateVisits.command > prev.context.gateVisits.command;
  const askedByCurrentJob =
    prev.value === 'implementing' &&
    event.type === 'command.approval_requested' &&
    event.jobId === prev.context.currentJobId;
  if (commandGateOpened && !askedByCurrentJob) violated('command gate opened without the current implement job asking');
  if (prev.value === 'awaitingCommandApproval' && !['awaitingCommandApproval', 'implementing', 'cancelled'].includes(String(next.value))) {
    violated('left the command gate for neither implementing nor cancelled');
  }
  // …and is left for implementing only on a decision this step counted at its current visit: an
  // approval that meets the command policy (a person's quorum, or the policy's own auto-approval),
  // or a counted rejection. An auto-approved gate is entered and left within the one step.
  const leftCommandGate =
    next.value === 'implementing' && (prev.value === 'awaitingCommandApproval' || commandGateOpened);
  if (leftCommandGate) {
    const c = next.context;
    const policy = policyOf(c, 'command');
    const counted = c.decisions
      .slice(prev.context.decisions.length)
      .filter((d) => d.gate === 'command' && d.visit === c.gateVisits.command && d.counted);
    const approved = counted.some((d) => d.decision === 'approve') && gateSatisfied(c, 'command');
    const rejected = counted.some((d) => d.decision === 'reject' && d.by !== AUTO && isAllowed(policy, d.by));
    if (approved) tally.commandApproved += 1;
    if (rejected) tally.commandRejected += 1;
    if (!approved && !rejected) violated('left the command gate without a counted decision');
    // The command joins the approved ones only on approval, and nothing is left pending.
    const command = event.type === 'command.approval_requested' ? event.command : prev.context.pendingCommand?.command;
    const expected = approved ? [...prev.context.approvedCommands, command] : prev.context.approvedCommands;
    if (JSON.stringify(c.approvedCommands) !== JSON.stringify(expected)) violated(`approved commands ${JSON.stringify(c.approvedCommands)}`);
    if (c.pendingCommand !== null) violated('a command still pending after the command gate');
  } else if (next.context.approvedCommands.length !== prev.context.approvedCommands.length) {
    violated('approved commands changed without passing the command gate');
  }

  if (entered('implementing')) {
    // (b) the plan gate's current visit is satisfied on every entry…
    if (!gateSatisfied(next.context, 'plan')) violated('plan gate not satisfied');
    if (prev.context.attempts.implement === 0) {
      // …and the first entry comes through the plan gate.
      tally.firstImplementEntries += 1;
      const planGateOpened = next.context.gateVisits.plan > prev.context.gateVisits.plan;
      const throughGate =
        prev.value === 'awaitingPlanApproval' || (scenario.policies.plan.autoApprove && planGateOpened);
      if (!throughGate) violated('first implementation around the plan gate');
    }
  }
  return { snapshot: next, implementedSinceDeployGate };
}

function explore(scenario: Scenario) {
  const input = submitFor(scenario);
  const paths = getShortestPaths(taskMachine, {
    input,
    events: (s) => eventsFor(scenario, s),
    serializeState: groupOf,
    serializeEvent: (event) => event.msgId,
  });
  const tally: Tally = {
    deployEntries: 0,
    firstImplementEntries: 0,
    refusedDecisions: 0,
    commandApproved: 0,
    commandRejected: 0,
    reached: new Set(),
    violations: [],
  };
  let pathsToDone = 0;

  // Shortest paths share their prefixes, so each replayed prefix is kept and extended once.
  const replays = new Map<string, Walk>([['', { snapshot: initialTransition(taskMachine, input)[0], implementedSinceDeployGate: false }]]);
  const replay = (labels: string[]): Walk => {
    const key = labels.join(' ');
    const known = replays.get(key);
    if (known !== undefined) return known;
    const before = replay(labels.slice(0, -1));
    const label = labels.at(-1);
    const event = eventsFor(scenario, before.snapshot).find((e) => e.msgId === label);
    if (event === undefined) throw new Error(`event ${String(label)} is not offered in ${String(before.snapshot.value)}`);
    const walk = checkStep(scenario, before, event, tally);
    replays.set(key, walk);
    return walk;
  };

  for (const path of paths) {
    // The first step is the initial snapshot, reached by xstate.init.
    const walk = replay(path.steps.slice(1).map((step) => step.event.msgId));
    if (groupOf(walk.snapshot) !== groupOf(path.state)) {
      tally.violations.push(`replay of ${path.steps.length - 1} steps left its group: ${groupOf(walk.snapshot)}`);
    }
    if (walk.snapshot.value === 'done') pathsToDone += 1;
    // Every edge out of every reachable group, from a real trajectory.
    for (const event of eventsFor(scenario, walk.snapshot)) checkStep(scenario, walk, event, tally);
  }
  return { paths, tally, pathsToDone };
}

describe('task machine paths', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))(
    'never deploys, implements or runs a command without the gate policy satisfied, and can finish: %s',
    (_name, scenario) => {
      const { paths, tally, pathsToDone } = explore(scenario);
      expect(tally.violations.slice(0, 10)).toEqual([]);

      // (c) done is reachable.
      expect(pathsToDone).toBeGreaterThan(0);
      // Not vacuous: the exploration did enter deploying and implementing, and saw refusals.
      expect(tally.deployEntries).toBeGreaterThan(0);
      expect(tally.firstImplementEntries).toBeGreaterThan(0);
      expect(paths.length).toBeGreaterThan(10);
      expect([...tally.reached].sort()).toEqual(
        [
          'awaitingCommandApproval',
          'awaitingDeployApproval',
          'awaitingPlanApproval',
          'awaitingReviewApproval',
          'cancelled',
          'deploying',
          'done',
          'failed',
          'implementing',
          'planning',
          'reviewing',
        ].filter((state) => !isSkipped(scenario, state)),
      );
      const everyGateAuto = GATES.every((g) => policyIn(scenario.policies, g).autoApprove);
      if (!everyGateAuto) expect(tally.refusedDecisions).toBeGreaterThan(0);
      // Not vacuous: where the coder asks, some path goes implementing → command gate → implementing,
      // by approval and, where people decide, by rejection.
      if (!scenario.noCommands) expect(tally.commandApproved).toBeGreaterThan(0);
      if (!scenario.noCommands && !policyIn(scenario.policies, 'command').autoApprove) {
        expect(tally.commandRejected).toBeGreaterThan(0);
      }
    },
  );
});

/**
 * A gate state that auto-approves is passed through within one step, so no snapshot rests in it;
 * the command gate is not reached at all where the coder never asks.
 */
function isSkipped(scenario: Scenario, state: string): boolean {
  if (scenario.noCommands && state === GATE_STATES.command) return true;
  return GATES.some((g) => policyIn(scenario.policies, g).autoApprove && GATE_STATES[g] === state);
}
