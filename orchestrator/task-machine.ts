/**
 * The task statechart. It is only ever driven through XState's pure `transition()`: the
 * orchestrator loads a snapshot, applies one event, commits the result, and only then performs
 * the actions it returned. Guards and actions therefore read nothing but the task and the event;
 * time comes from the event's `sentAt`.
 *
 * planning → awaitingPlanApproval → implementing → reviewing
 *   ↺ changes requested → implementing (while rounds are left, else awaitingReviewApproval)
 * → awaitingDeployApproval → deploying → done; plus failed (retryable) and cancelled.
 * A task with a pull request waits after each approving review in awaitingChecks for the CI
 * checks on the reviewed commit: green goes on to the deploy gate; red goes back to the coder
 * with what failed, at most `ci.maxFixAttempts` times, and stops at the review gate (a person
 * decides) when the same checks fail the same way twice in a row or the attempts are used up.
 * Checks failing on the base branch too are not the change's to fix: the task waits (or goes on
 * to the deploy gate, if its CI policy says so).
 * A person's changes-requested review of the pull request at the review or deploy gate sends the
 * work back to implementing with the review's comments.
 * A pull request that conflicts with its base (or lags behind it, where that matters) while the
 * task waits at the review or deploy gate or for checks goes to an update round: an implement
 * job that merges the base into the branch, then a review of the merged result.
 * Reviewers' comments go back to implementing at most the event's `maxReviewerRounds`
 * times per task: after that the task stays at (or, from awaitingChecks, goes to) a gate and a
 * person decides, so reviewers and coder cannot loop without end.
 * High or critical security findings in a review send the work back to the coder once, with the
 * findings as review comments; if the next review still has some, the deploy gate is held: only
 * the security group's approval with a reason (an override, recorded as such) passes it.
 *
 * A gate passes when its policy (`gate-policy.ts`) is satisfied: a quorum of allowed approvers,
 * or an auto-approval rule on the task's facts. Gate timeouts are durable records outside the
 * chart (`timers/`); when one falls due it arrives here as an ordinary `gate.timer_fired` event.
 */
import { and, assign, setup } from 'xstate';
import { isBlockingFinding, type CheckFailure, type ChecksReported, type Gate, type GateTimerKind, type InboxMessage, type ReviewComment, type SecurityFinding, type Stage, type TaskSubmit } from '../core/bus/messages.js';
import { policyFor, type GatePolicy, type TimeoutAction } from '../core/policy.js';
import { addUsage, checkedCommit, emptyUsage, type Decision, type GateVisit, type TaskContext } from '../core/task-record.js';
import { autoApprovalAt, blockingFindings, deciderOf, headNamedBy, isPinnedGate, isSecurityBlocked, openVisit, refusalOf, tallyGate } from './gate-policy.js';

export type TaskEvent = Exclude<InboxMessage, TaskSubmit>;
type DecideEvent = Extract<TaskEvent, { type: 'gate.decide' }>;

/** The stage a gate belongs to, for a task cancelled while it waits there. */
const STAGE_OF_GATE = { plan: 'plan', command: 'implement', review: 'review', deploy: 'deploy' } as const satisfies Record<Gate, Stage>;

const FAILED_STAGE_TARGET = {
  plan: 'planning',
  implement: 'implementing',
  review: 'reviewing',
  deploy: 'deploying',
} as const satisfies Record<Stage, string>;

export function jobIdFor(taskId: string, stage: Stage, attempt: number): string {
  return `${taskId}:${stage}:${attempt}`;
}

export function branchFor(taskId: string): string {
  return `stagegate/${taskId}`;
}

/** The init event (first entry into planning) has no time of its own; the task's creation time stands in. */
function timeOf(context: TaskContext, event: { sentAt?: string }): string {
  return event.sentAt ?? context.updatedAt;
}

/**
 * Anyone who can click or comment can send refused decisions; the task keeps only the latest
 * of those (the audit log keeps every one), so they can never grow its record without bound.
 */
const REFUSALS_KEPT = 20;
const COMMENT_KEPT = 2_000;

function keepRefusalsBounded(decisions: Decision[]): Decision[] {
  const refused = decisions.filter((d) => !d.counted);
  if (refused.length <= REFUSALS_KEPT) return decisions;
  const dropped = new Set(refused.slice(0, refused.length - REFUSALS_KEPT));
  return decisions.filter((d) => !dropped.has(d));
}

/** Coder rounds blocking security findings get before they hold the deploy gate. */
const SECURITY_FIX_ROUNDS = 1;

function decisionRecord(context: TaskContext, event: DecideEvent, gate: Gate, note?: string): Decision {
  const comment = event.comment === undefined ? undefined : event.comment.slice(0, COMMENT_KEPT);
  const override = note === undefined && event.decision === 'approve' && isSecurityBlocked(context, gate);
  // The head it was given for: the one it named (in full), else the head the task knows now.
  const sha = !isPinnedGate(gate) ? null : event.sha === undefined ? context.head : (headNamedBy(context, event.sha) ?? event.sha);
  return {
    gate,
    visit: context.gateVisits[gate],
    decision: event.decision,
    by: event.by,
    via: event.via,
    ...(comment === undefined ? {} : { comment }),
    at: event.sentAt,
    counted: note === undefined,
    ...(note === undefined ? {} : { note }),
    ...(event.principal === undefined ? {} : { principal: event.principal }),
    ...(override ? { securityOverride: true as const } : {}),
    ...(sha === null ? {} : { sha }),
  };
}

/** A finding as the coder reads it, beside the reviewer's comments. */
function findingAsComment(finding: SecurityFinding): ReviewComment {
  return {
    file: finding.file,
    line: finding.line,
    body: `Security (${finding.severity}, ${finding.category}): ${finding.description} Suggested fix: ${finding.suggestedFix || 'none given'}`,
  };
}

function addMs(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

/** A new visit to a gate: its timers' due times count from the event that brought the task here. */
function newVisit(context: TaskContext, gate: Gate, at: string): GateVisit {
  const timeout = policyFor(context.policies, gate).timeout;
  const timers: GateVisit['timers'] = [];
  if (timeout?.remindAfterMs !== undefined) timers.push({ kind: 'remind', fireAt: addMs(at, timeout.remindAfterMs), firedAt: null });
  if (timeout?.expireAfterMs !== undefined) timers.push({ kind: 'expire', fireAt: addMs(at, timeout.expireAfterMs), firedAt: null });
  return { gate, visit: context.gateVisits[gate] + 1, openedAt: at, escalatedAt: null, timers };
}

/** The event is this gate's timer of `kind`, for the open visit, due and not fired yet. */
function isDueTimer(context: TaskContext, event: TaskEvent, gate: Gate, kind: GateTimerKind): boolean {
  if (event.type !== 'gate.timer_fired' || event.gate !== gate || event.kind !== kind) return false;
  const visit = openVisit(context, gate);
  const timer = visit?.timers.find((t) => t.kind === kind);
  if (visit === undefined || timer === undefined || visit.visit !== event.visit || timer.firedAt !== null) return false;
  return Date.parse(event.sentAt) >= Date.parse(timer.fireAt);
}

function markFired(context: TaskContext, gate: Gate, kind: GateTimerKind, at: string): GateVisit | null {
  const visit = openVisit(context, gate);
  if (visit === undefined) return context.gateVisit;
  return { ...visit, timers: visit.timers.map((t) => (t.kind === kind ? { ...t, firedAt: at } : t)) };
}

/** Facts about a change, from whoever measured it last; a new commit starts them afresh. */
function changeFactsOf(event: { changedFiles?: string[] | undefined; linesChanged?: number | undefined }) {
  return {
    ...(event.changedFiles === undefined ? {} : { changedFiles: event.changedFiles }),
    ...(event.linesChanged === undefined ? {} : { linesChanged: event.linesChanged }),
  };
}

function expiryAction(context: TaskContext, gate: Gate): TimeoutAction | undefined {
  return policyFor(context.policies, gate).timeout?.onExpire;
}

/** Characters of each failed check's details the coder is told (the record keeps every round's). */
const CI_DETAILS_KEPT = 6_000;

function signaturesOf(failures: readonly CheckFailure[]): string[] {
  return [...new Set(failures.map((f) => f.signature))].sort();
}

function namesOf(failures: readonly CheckFailure[]): string {
  return failures.map((f) => f.name).join(', ') || 'checks';
}

/** Why the CI-fix loop stops at this red report, if it does: the same failure again, or no attempts left. */
function ciLoopStop(context: TaskContext, event: ChecksReported): string | undefined {
  const policy = context.ciPolicy;
  if (policy === null) return undefined;
  const same = context.ci.lastSignatures !== null && context.ci.lastSignatures.join('\n') === signaturesOf(event.failures).join('\n');
  if (same) return `the same failure twice in a row (${namesOf(event.failures)}): fixing it again is unlikely to help, so a person decides`;
  if (context.ci.fixAttempts >= policy.maxFixAttempts) {
    return `${context.ci.fixAttempts} CI-fix attempt${context.ci.fixAttempts === 1 ? '' : 's'} used (at most ${policy.maxFixAttempts}) and ${namesOf(event.failures)} still fail${event.failures.length === 1 ? 's' : ''}: a person decides`;
  }
  return undefined;
}

function isRedReport(context: TaskContext, event: TaskEvent): event is ChecksReported {
  return event.type === 'checks.reported' && event.commit === checkedCommit(context) && event.verdict === 'red';
}

function describeWait(context: TaskContext, gate: Gate): string {
  const ms = policyFor(context.policies, gate).timeout?.expireAfterMs ?? 0;
  const minutes = Math.round(ms / 60_000);
  return minutes >= 1 ? `${minutes} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * XState's pure `transition()` creates a throwaway actor for every step, which computes an
 * initial snapshot without input and discards it. Given this input it computes one in passing,
 * rather than throwing a TypeError that XState catches: a thrown error on every step of every task.
 */
/** Approved by nobody real: the context is never stored, and if it were it should open no gate. */
const NOBODY: GatePolicy = { approvers: ['api:stagegate-throwaway-actor'], required: 1, autoApprove: false };
export const INPUT_OF_THROWAWAY_ACTOR: TaskSubmit = {
  type: 'task.submit',
  taskId: 'never-stored',
  msgId: 'never-stored',
  sentAt: new Date(0).toISOString(),
  spec: { repo: '-', title: '-', body: '', base: 'main', submittedBy: '-' },
  policies: { plan: NOBODY, review: NOBODY, deploy: NOBODY },
  maxReviewRounds: 0,
};

export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    events: {} as TaskEvent,
    input: {} as TaskSubmit,
  },
  guards: {
    isCurrentJob: ({ context, event }) => 'jobId' in event && event.jobId === context.currentJobId,
    /** A push put the branch on a commit the task did not know as its head. */
    headMoved: ({ context, event }) => event.type === 'branch.moved' && event.sha !== context.head,
    hasReviewRoundsLeft: ({ context, event }) =>
      'jobId' in event && event.jobId === context.currentJobId && context.reviewRound - context.freeReviews <= context.maxReviewRounds,
    /** The review found blocking security issues, and the coder has not had its round on them yet. */
    securityRoundDue: ({ context, event }) =>
      (event.type === 'review.approved' || event.type === 'review.changes_requested') &&
      event.jobId === context.currentJobId &&
      (event.security?.findings ?? []).some(isBlockingFinding) &&
      context.security.fixRounds < SECURITY_FIX_ROUNDS,
    autoApproves: ({ context }, params: { gate: Gate }) => autoApprovalAt(context, params.gate) !== undefined,
    watchesChecks: ({ context }) => context.ciPolicy !== null,
    hasReviewerRoundsLeft: ({ context, event }) =>
      event.type === 'review.human_changes_requested' && (event.maxReviewerRounds === undefined || context.reviewerRounds.used < event.maxReviewerRounds),
    /** A report about the commit the task waits on (an older commit's checks change nothing). */
    checksGreen: ({ context, event }) => event.type === 'checks.reported' && event.commit === checkedCommit(context) && event.verdict === 'green',
    redBase: ({ context, event }, params: { onRedBase: 'wait' | 'proceed' }) =>
      isRedReport(context, event) && event.baseRed && context.ciPolicy?.onRedBase === params.onRedBase,
    ciLoopStops: ({ context, event }) => isRedReport(context, event) && ciLoopStop(context, event) !== undefined,
    ciFixDue: ({ context, event }) => isRedReport(context, event),
    /** The pull request at the head the task knows conflicts with (or lags behind) its base. */
    updateDue: ({ context, event }) => event.type === 'base.moved' && event.head === checkedCommit(context),
    approvalPassesGate: ({ context, event }, params: { gate: Gate }) =>
      event.type === 'gate.decide' &&
      event.decision === 'approve' &&
      refusalOf(context, params.gate, event) === undefined &&
      tallyGate(context, params.gate, { extra: deciderOf(event) }).satisfied,
    decisionCounts: ({ context, event }, params: { gate: Gate; decision: 'approve' | 'reject' }) =>
      event.type === 'gate.decide' &&
      event.decision === params.decision &&
      refusalOf(context, params.gate, event) === undefined,
    failedAt: ({ context }, params: { stage: Stage }) => context.error?.stage === params.stage,
    remindDue: ({ context, event }, params: { gate: Gate }) => isDueTimer(context, event, params.gate, 'remind'),
    expiryDue: ({ context, event }, params: { gate: Gate; onExpire: TimeoutAction }) =>
      isDueTimer(context, event, params.gate, 'expire') && expiryAction(context, params.gate) === params.onExpire,
    /** The gate escalates, and the approvals it already has satisfy the escalation group's quorum. */
    escalationPassesGate: ({ context, event }, params: { gate: Gate }) =>
      isDueTimer(context, event, params.gate, 'expire') &&
      expiryAction(context, params.gate) === 'escalate' &&
      tallyGate(context, params.gate, { escalated: true }).satisfied,
  },
  actions: {
    startStage: assign(({ context, event }, params: { stage: Stage }) => {
      const at = timeOf(context, event);
      const attempt = context.attempts[params.stage] + 1;
      const jobId = jobIdFor(context.taskId, params.stage, attempt);
      // The deploy job merges the head its gate was passed for; a retried deploy, that same one.
      const deployCommit =
        params.stage === 'deploy' && event.type !== 'task.retry' ? (context.head ?? context.implementation?.commit ?? null) : context.deployCommit;
      return {
        deployCommit,
        // The branch's head: a person's commits pushed since the coder's are part of what is reviewed.
        ...(params.stage === 'review' ? { reviewCommit: context.head ?? context.implementation?.commit ?? null } : {}),
        attempts: { ...context.attempts, [params.stage]: attempt },
        currentJobId: jobId,
        // A retried review re-runs the same round: a failed reviewer job must not use up a round.
        reviewRound:
          params.stage === 'review' && event.type !== 'task.retry' ? context.reviewRound + 1 : context.reviewRound,
        error: null,
        stages: [
          ...context.stages,
          { stage: params.stage, attempt, jobId, startedAt: at, endedAt: null, outcome: null, usage: emptyUsage() },
        ],
        updatedAt: at,
      };
    }),
    endStage: assign(({ context, event }, params: { outcome: string }) => {
      const usage = 'usage' in event ? event.usage : emptyUsage();
      const stages = context.stages.map((s) =>
        s.jobId === context.currentJobId && s.endedAt === null
          ? { ...s, endedAt: event.sentAt, outcome: params.outcome, usage: addUsage(s.usage, usage) }
          : s,
      );
      return { stages, usage: addUsage(context.usage, usage), currentJobId: null, updatedAt: event.sentAt };
    }),
    /** Performed after the commit by the effects runner; it composes the job from the context. */
    dispatchJob: (_args, _params: { stage: Stage }) => {},
    recordPlan: assign(({ event }) => (event.type === 'plan.proposed' ? { plan: event.plan, verdict: null } : {})),
    recordImplementation: assign(({ event }) =>
      event.type === 'code.committed'
        ? {
            implementation: { commit: event.commit, summary: event.summary, attempts: event.attempts },
            facts: { commit: event.commit, ...changeFactsOf(event) },
            head: event.commit,
            update: null,
            ...(event.foreignCommits === undefined ? {} : { foreignCommits: event.foreignCommits }),
          }
        : {},
    ),
    /** The next implement job merges the base into the branch or rebases onto it (the task's strategy); the result is reviewed again. */
    startUpdateRound: assign(({ context, event }) =>
      event.type === 'base.moved'
        ? {
            update: {
              baseSha: event.baseSha,
              conflicts: event.mergeableState === 'dirty',
              ...(context.spec.updateStrategy === undefined ? {} : { strategy: context.spec.updateStrategy }),
            },
            freeReviews: context.freeReviews + 1,
            updatedAt: event.sentAt,
          }
        : {},
    ),
    /**
     * The review describes the commit its job was given: its verdict, risk and tests join the
     * facts, its security findings replace the last ones, and any coder sent back sees the
     * blocking ones among the review comments.
     */
    recordVerdict: assign(({ context, event }) => {
      if (event.type !== 'review.approved' && event.type !== 'review.changes_requested') return {};
      const commit = context.reviewCommit ?? context.implementation?.commit ?? context.facts.commit;
      const earlier = context.facts.commit === commit ? changeFactsOf(context.facts) : {};
      const findings = event.security?.findings ?? [];
      return {
        verdict: event.verdict,
        reviewComments: [...event.verdict.comments, ...findings.filter(isBlockingFinding).map(findingAsComment)],
        security: { ...context.security, findings, summary: event.security?.summary ?? '' },
        facts: {
          commit,
          ...earlier,
          ...changeFactsOf(event),
          checksGreen: event.testsPassed,
          verdict: event.verdict.decision,
          ...(event.verdict.risk === undefined ? {} : { risk: event.verdict.risk }),
        },
      };
    }),
    /** The coder's one round on blocking security findings. */
    startSecurityRound: assign(({ context }) => {
      const count = blockingFindings(context).length;
      const note = `The security review found ${count} high-severity issue${count === 1 ? '' : 's'} (in the review comments marked Security): fix ${count === 1 ? 'it' : 'them'} in this round. Whatever remains will hold the deploy gate until the security group overrides it.`;
      return {
        security: { ...context.security, fixRounds: context.security.fixRounds + 1 },
        implementFeedback: [...context.implementFeedback, note],
      };
    }),
    /** Work so far may be committed: nothing is known about that change yet. */
    recordPendingCommand: assign(({ context, event }) =>
      event.type === 'command.approval_requested'
        ? {
            pendingCommand: { command: event.command, pattern: event.pattern, notes: event.notes, commit: event.commit },
            facts: { commit: event.commit },
            head: event.commit ?? context.head,
          }
        : {},
    ),
    /** A person's push at the review gate is reviewed; that review does not use up a review round. */
    recordPushReview: assign(({ context }) => ({ freeReviews: context.freeReviews + 1 })),
    /** The branch moved: deploy approvals for the earlier head are stale from now on (`gate-policy.ts`). */
    recordHead: assign(({ event }) =>
      event.type === 'branch.moved'
        ? { head: event.sha, updatedAt: event.sentAt, ...(event.by === undefined ? {} : { lastPush: { sha: event.sha, by: event.by, at: event.sentAt } }) }
        : {},
    ),
    /** The resumed coder job may run the command, and is told where it left off. */
    approveCommand: assign(({ context }) => {
      const pending = context.pendingCommand;
      if (pending === null) return {};
      const note = `A person approved running \`${pending.command}\`: run it now and carry on. Where you left off: ${pending.notes}`;
      return {
        approvedCommands: [...context.approvedCommands, pending.command],
        implementFeedback: [...context.implementFeedback, note],
        pendingCommand: null,
      };
    }),
    rejectCommand: assign(({ context, event }) => {
      const pending = context.pendingCommand;
      if (pending === null) return {};
      const why =
        event.type === 'gate.timer_fired'
          ? ` (nobody decided within ${describeWait(context, 'command')})`
          : event.type === 'gate.decide' && event.comment !== undefined
            ? ` (${event.comment})`
            : '';
      const note = `A person did not approve running \`${pending.command}\`${why}: do without it. Where you left off: ${pending.notes}`;
      return { implementFeedback: [...context.implementFeedback, note], pendingCommand: null };
    }),
    /** What the checks said, in the task's words; green also becomes a fact auto-approval rules read. */
    recordChecks: assign(({ context, event }) => {
      if (event.type !== 'checks.reported') return {};
      const sha = event.commit.slice(0, 7);
      const base = context.spec.base;
      let note: string;
      if (event.verdict === 'green') note = `checks passed on ${sha}: ${event.summary}`;
      else if (event.baseRed) {
        note =
          context.ciPolicy?.onRedBase === 'proceed'
            ? `the base branch is red: ${namesOf(event.failures)} fail on ${base} too; going on as the CI policy allows`
            : `the base branch is red: ${namesOf(event.failures)} fail on ${base} too, so this change is not what broke them; waiting for ${base} to be fixed`;
      } else note = ciLoopStop(context, event) ?? `checks failed on ${sha}: ${namesOf(event.failures)}; the coder is fixing them`;
      // "Twice in a row" means two red reports with nothing green between them.
      const lastSignatures = event.verdict === 'green' ? null : event.baseRed ? context.ci.lastSignatures : signaturesOf(event.failures);
      return {
        ci: { ...context.ci, note, lastSignatures },
        facts: { ...context.facts, checksGreen: event.verdict === 'green' },
        updatedAt: event.sentAt,
      };
    }),
    /** One coder round on failed checks: what failed, with its output and log, as feedback. */
    startCiFixRound: assign(({ context, event }) => {
      if (event.type !== 'checks.reported') return {};
      const attempt = context.ci.fixAttempts + 1;
      const details = event.failures.map((f) => `## ${f.name}${f.url === undefined ? '' : ` (${f.url})`}\n${f.details.slice(-CI_DETAILS_KEPT)}`).join('\n\n');
      const note = `CI failed on ${event.commit.slice(0, 7)} (fix attempt ${attempt} of ${context.ciPolicy?.maxFixAttempts ?? attempt}). Find the cause in what failed below, fix it, and run the tests again before you finish:\n\n${details}`;
      return { ci: { ...context.ci, fixAttempts: attempt }, implementFeedback: [...context.implementFeedback, note] };
    }),
    recordDeploy: assign(({ event }) =>
      event.type === 'deploy.succeeded' ? { deployed: { commit: event.commit, target: event.target } } : {},
    ),
    /** The stage comes from the state that failed, never from the event: `task.retry` re-enters it. */
    recordFailure: assign(({ event }, params: { stage: Stage }) =>
      event.type === 'job.failed' ? { error: { stage: params.stage, reason: event.reason } } : {},
    ),
    openGate: assign(({ context, event }, params: { gate: Gate }) => ({
      gateVisits: { ...context.gateVisits, [params.gate]: context.gateVisits[params.gate] + 1 },
      gateVisit: newVisit(context, params.gate, timeOf(context, event)),
      updatedAt: timeOf(context, event),
    })),
    /** Recorded like any decision, by the policy, naming the rule that made it and why it held. */
    recordAutoApproval: assign(({ context, event }, params: { gate: Gate }) => {
      const approval = autoApprovalAt(context, params.gate);
      if (approval === undefined) return {};
      const decision: Decision = {
        gate: params.gate,
        visit: context.gateVisits[params.gate],
        decision: 'approve',
        by: approval.by,
        via: 'policy',
        ...(approval.reason === undefined ? {} : { comment: approval.reason }),
        at: event.sentAt,
        counted: true,
        ...(approval.rule === undefined ? {} : { rule: approval.rule }),
        ...(context.head === null || !isPinnedGate(params.gate) ? {} : { sha: context.head }),
      };
      return { decisions: [...context.decisions, decision] };
    }),
    recordReminder: assign(({ context, event }, params: { gate: Gate }) => ({
      gateVisit: markFired(context, params.gate, 'remind', event.sentAt),
      updatedAt: event.sentAt,
    })),
    /**
     * The gate timed out. Escalation hands the gate to the escalation group (once: there is one
     * expiry per visit); a rejection is recorded as the policy's decision.
     */
    recordExpiry: assign(({ context, event }, params: { gate: Gate }) => {
      const visit = markFired(context, params.gate, 'expire', event.sentAt);
      const action = expiryAction(context, params.gate);
      if (action === 'escalate') return { gateVisit: visit && { ...visit, escalatedAt: event.sentAt }, updatedAt: event.sentAt };
      if (action !== 'reject') return { gateVisit: visit, updatedAt: event.sentAt };
      const decision: Decision = {
        gate: params.gate,
        visit: context.gateVisits[params.gate],
        decision: 'reject',
        by: 'policy:timeout',
        via: 'policy',
        comment: `no decision within ${describeWait(context, params.gate)}`,
        at: event.sentAt,
        counted: true,
      };
      return { gateVisit: visit, decisions: [...context.decisions, decision], updatedAt: event.sentAt };
    }),
    /** What the agent is told when its work comes back because nobody decided in time. */
    addTimeoutFeedback: assign(({ context }, params: { gate: Gate }) => {
      const note = `The ${params.gate} gate timed out: nobody decided within ${describeWait(context, params.gate)}, so it was rejected. Take another look and make the change easier to approve.`;
      return params.gate === 'plan'
        ? { planFeedback: [...context.planFeedback, note] }
        : { implementFeedback: [...context.implementFeedback, note] };
    }),
    recordTimeoutCancel: assign(({ context, event }, params: { gate: Gate }) => ({
      error: {
        stage: STAGE_OF_GATE[params.gate],
        reason: `cancelled: the ${params.gate} gate timed out with no decision within ${describeWait(context, params.gate)}`,
      },
      currentJobId: null,
      updatedAt: event.sentAt,
    })),
    recordDecision: assign(({ context, event }, params: { gate: Gate }) =>
      event.type === 'gate.decide'
        ? { decisions: keepRefusalsBounded([...context.decisions, decisionRecord(context, event, params.gate, refusalOf(context, params.gate, event))]) }
        : {},
    ),
    addPlanFeedback: assign(({ context, event }) =>
      event.type === 'gate.decide' && event.comment !== undefined
        ? { planFeedback: [...context.planFeedback, event.comment] }
        : {},
    ),
    addImplementFeedback: assign(({ context, event }) =>
      event.type === 'gate.decide' && event.comment !== undefined
        ? { implementFeedback: [...context.implementFeedback, event.comment] }
        : {},
    ),
    /** A person's changes-requested review of the pull request: its comments go to the coder in place of the reviewer's. */
    recordHumanReview: assign(({ context, event }) => {
      if (event.type !== 'review.human_changes_requested') return {};
      const summary = event.summary.trim() === '' ? '' : `: ${event.summary.trim()}`;
      const note = `${event.by} requested changes in a review of the pull request${summary}`;
      return {
        reviewComments: event.comments,
        implementFeedback: [...context.implementFeedback, note],
        reviewerRounds: { used: context.reviewerRounds.used + 1, note: null },
        updatedAt: event.sentAt,
      };
    }),
    /** The loop breaker held: the review is kept out of the coder's way and the record says why. */
    recordReviewerLimit: assign(({ context, event }) => {
      if (event.type !== 'review.human_changes_requested') return {};
      const used = context.reviewerRounds.used;
      const note = `${event.by} asked for changes, but reviews of the pull request already started ${used} coder round${used === 1 ? '' : 's'} (at most ${event.maxReviewerRounds ?? used}): a person decides at the gate (approve, or /reject with what to change)`;
      return { reviewerRounds: { used, note }, updatedAt: event.sentAt };
    }),
    /** `stage: null` keeps the stage a failed task stopped at. */
    recordCancel: assign(({ context, event }, params: { stage: Stage | null }) =>
      event.type === 'task.cancel'
        ? {
            error: {
              stage: params.stage ?? context.error?.stage ?? 'plan',
              reason: `cancelled by ${event.by}: ${event.reason}`,
            },
            currentJobId: null,
            updatedAt: event.sentAt,
          }
        : {},
    ),
  },
}).createMachine({
  id: 'task',
  context: ({ input = INPUT_OF_THROWAWAY_ACTOR }) => ({
    taskId: input.taskId,
    spec: input.spec,
    policies: input.policies,
    maxReviewRounds: input.maxReviewRounds,
    branch: input.spec.branch ?? branchFor(input.taskId),
    plan: null,
    planFeedback: [],
    implementFeedback: [],
    reviewRound: 0,
    reviewComments: [],
    verdict: null,
    implementation: null,
    deployed: null,
    approvedCommands: [],
    pendingCommand: null,
    attempts: { plan: 0, implement: 0, review: 0, deploy: 0 },
    currentJobId: null,
    gateVisits: { plan: 0, review: 0, deploy: 0, command: 0 },
    gateVisit: null,
    facts: { commit: null },
    security: { findings: [], summary: '', fixRounds: 0 },
    ciPolicy: input.ci ?? null,
    ci: { fixAttempts: 0, lastSignatures: null, note: null },
    reviewerRounds: { used: 0, note: null },
    maxReviewerRounds: input.maxReviewerRounds ?? null,
    head: null,
    deployCommit: null,
    reviewCommit: null,
    update: null,
    freeReviews: 0,
    foreignCommits: [],
    lastPush: null,
    decisions: [],
    stages: [],
    usage: emptyUsage(),
    error: null,
    createdAt: input.sentAt,
    updatedAt: input.sentAt,
  }),
  initial: 'planning',
  // task.cancel is handled per state, not on the root: a root handler would also fire in the final
  // states (pure `transition()` does not stop at a final state), turning a done task into cancelled.
  states: {
    planning: {
      entry: [
        { type: 'startStage', params: { stage: 'plan' } },
        { type: 'dispatchJob', params: { stage: 'plan' } },
      ],
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'plan' } } },
        'plan.proposed': {
          guard: 'isCurrentJob',
          target: 'awaitingPlanApproval',
          actions: [{ type: 'endStage', params: { outcome: 'plan proposed' } }, 'recordPlan'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'plan' } },
          ],
        },
      },
    },
    awaitingPlanApproval: {
      entry: { type: 'openGate', params: { gate: 'plan' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'plan' } },
        target: 'implementing',
        actions: { type: 'recordAutoApproval', params: { gate: 'plan' } },
      },
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'plan' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'plan' } },
            target: 'implementing',
            actions: { type: 'recordDecision', params: { gate: 'plan' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'plan', decision: 'reject' } },
            target: 'planning',
            actions: [{ type: 'recordDecision', params: { gate: 'plan' } }, 'addPlanFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'plan' } } },
        ],
        'gate.timer_fired': [
          { guard: { type: 'remindDue', params: { gate: 'plan' } }, actions: { type: 'recordReminder', params: { gate: 'plan' } } },
          {
            guard: { type: 'expiryDue', params: { gate: 'plan', onExpire: 'reject' } },
            target: 'planning',
            actions: [{ type: 'recordExpiry', params: { gate: 'plan' } }, { type: 'addTimeoutFeedback', params: { gate: 'plan' } }],
          },
          {
            guard: { type: 'expiryDue', params: { gate: 'plan', onExpire: 'cancel' } },
            target: 'cancelled',
            actions: [{ type: 'recordExpiry', params: { gate: 'plan' } }, { type: 'recordTimeoutCancel', params: { gate: 'plan' } }],
          },
          {
            guard: { type: 'escalationPassesGate', params: { gate: 'plan' } },
            target: 'implementing',
            actions: { type: 'recordExpiry', params: { gate: 'plan' } },
          },
          { guard: { type: 'expiryDue', params: { gate: 'plan', onExpire: 'escalate' } }, actions: { type: 'recordExpiry', params: { gate: 'plan' } } },
        ],
      },
    },
    implementing: {
      entry: [
        { type: 'startStage', params: { stage: 'implement' } },
        { type: 'dispatchJob', params: { stage: 'implement' } },
      ],
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'implement' } } },
        'command.approval_requested': {
          guard: 'isCurrentJob',
          target: 'awaitingCommandApproval',
          actions: [{ type: 'endStage', params: { outcome: 'waiting for approval' } }, 'recordPendingCommand'],
        },
        'code.committed': {
          guard: 'isCurrentJob',
          target: 'reviewing',
          actions: [{ type: 'endStage', params: { outcome: 'committed' } }, 'recordImplementation'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'implement' } },
          ],
        },
      },
    },
    awaitingCommandApproval: {
      entry: { type: 'openGate', params: { gate: 'command' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'command' } },
        target: 'implementing',
        actions: [{ type: 'recordAutoApproval', params: { gate: 'command' } }, 'approveCommand'],
      },
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'implement' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'command' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'command' } }, 'approveCommand'],
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'command', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'command' } }, 'rejectCommand'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'command' } } },
        ],
        'gate.timer_fired': [
          { guard: { type: 'remindDue', params: { gate: 'command' } }, actions: { type: 'recordReminder', params: { gate: 'command' } } },
          {
            guard: { type: 'expiryDue', params: { gate: 'command', onExpire: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordExpiry', params: { gate: 'command' } }, 'rejectCommand'],
          },
          {
            guard: { type: 'expiryDue', params: { gate: 'command', onExpire: 'cancel' } },
            target: 'cancelled',
            actions: [{ type: 'recordExpiry', params: { gate: 'command' } }, { type: 'recordTimeoutCancel', params: { gate: 'command' } }],
          },
          {
            guard: { type: 'escalationPassesGate', params: { gate: 'command' } },
            target: 'implementing',
            actions: [{ type: 'recordExpiry', params: { gate: 'command' } }, 'approveCommand'],
          },
          { guard: { type: 'expiryDue', params: { gate: 'command', onExpire: 'escalate' } }, actions: { type: 'recordExpiry', params: { gate: 'command' } } },
        ],
      },
    },
    reviewing: {
      entry: [
        { type: 'startStage', params: { stage: 'review' } },
        { type: 'dispatchJob', params: { stage: 'review' } },
      ],
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'review' } } },
        'review.approved': [
          {
            guard: 'securityRoundDue',
            target: 'implementing',
            actions: [{ type: 'endStage', params: { outcome: 'security findings' } }, 'recordVerdict', 'startSecurityRound'],
          },
          {
            guard: and(['isCurrentJob', 'watchesChecks']),
            target: 'awaitingChecks',
            actions: [{ type: 'endStage', params: { outcome: 'approved' } }, 'recordVerdict'],
          },
          {
            guard: 'isCurrentJob',
            target: 'awaitingDeployApproval',
            actions: [{ type: 'endStage', params: { outcome: 'approved' } }, 'recordVerdict'],
          },
        ],
        'review.changes_requested': [
          {
            guard: 'securityRoundDue',
            target: 'implementing',
            actions: [{ type: 'endStage', params: { outcome: 'changes requested' } }, 'recordVerdict', 'startSecurityRound'],
          },
          {
            guard: 'hasReviewRoundsLeft',
            target: 'implementing',
            actions: [{ type: 'endStage', params: { outcome: 'changes requested' } }, 'recordVerdict'],
          },
          {
            guard: 'isCurrentJob',
            target: 'awaitingReviewApproval',
            actions: [{ type: 'endStage', params: { outcome: 'changes requested' } }, 'recordVerdict'],
          },
        ],
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'review' } },
          ],
        },
      },
    },
    awaitingChecks: {
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'review' } } },
        'base.moved': { guard: 'updateDue', target: 'implementing', actions: 'startUpdateRound' },
        'review.human_changes_requested': [
          { guard: 'hasReviewerRoundsLeft', target: 'implementing', actions: 'recordHumanReview' },
          { target: 'awaitingReviewApproval', actions: 'recordReviewerLimit' },
        ],
        'checks.reported': [
          { guard: 'checksGreen', target: 'awaitingDeployApproval', actions: 'recordChecks' },
          { guard: { type: 'redBase', params: { onRedBase: 'proceed' } }, target: 'awaitingDeployApproval', actions: 'recordChecks' },
          { guard: { type: 'redBase', params: { onRedBase: 'wait' } }, actions: 'recordChecks' },
          { guard: 'ciLoopStops', target: 'awaitingReviewApproval', actions: 'recordChecks' },
          { guard: 'ciFixDue', target: 'implementing', actions: ['recordChecks', 'startCiFixRound'] },
        ],
      },
    },
    awaitingReviewApproval: {
      entry: { type: 'openGate', params: { gate: 'review' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'review' } },
        target: 'awaitingDeployApproval',
        actions: { type: 'recordAutoApproval', params: { gate: 'review' } },
      },
      on: {
        // A person pushed (a fix, say, after the loop stopped for them): the reviewer looks at the branch as it is now.
        'branch.moved': { guard: 'headMoved', target: 'reviewing', actions: ['recordHead', 'recordPushReview'] },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'review' } } },
        'base.moved': { guard: 'updateDue', target: 'implementing', actions: 'startUpdateRound' },
        'review.human_changes_requested': [
          { guard: 'hasReviewerRoundsLeft', target: 'implementing', actions: 'recordHumanReview' },
          { actions: 'recordReviewerLimit' },
        ],
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'review' } },
            target: 'awaitingDeployApproval',
            actions: { type: 'recordDecision', params: { gate: 'review' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'review', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'review' } }, 'addImplementFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'review' } } },
        ],
        'gate.timer_fired': [
          { guard: { type: 'remindDue', params: { gate: 'review' } }, actions: { type: 'recordReminder', params: { gate: 'review' } } },
          {
            guard: { type: 'expiryDue', params: { gate: 'review', onExpire: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordExpiry', params: { gate: 'review' } }, { type: 'addTimeoutFeedback', params: { gate: 'review' } }],
          },
          {
            guard: { type: 'expiryDue', params: { gate: 'review', onExpire: 'cancel' } },
            target: 'cancelled',
            actions: [{ type: 'recordExpiry', params: { gate: 'review' } }, { type: 'recordTimeoutCancel', params: { gate: 'review' } }],
          },
          {
            guard: { type: 'escalationPassesGate', params: { gate: 'review' } },
            target: 'awaitingDeployApproval',
            actions: { type: 'recordExpiry', params: { gate: 'review' } },
          },
          { guard: { type: 'expiryDue', params: { gate: 'review', onExpire: 'escalate' } }, actions: { type: 'recordExpiry', params: { gate: 'review' } } },
        ],
      },
    },
    awaitingDeployApproval: {
      entry: { type: 'openGate', params: { gate: 'deploy' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'deploy' } },
        target: 'deploying',
        actions: { type: 'recordAutoApproval', params: { gate: 'deploy' } },
      },
      on: {
        // The checks of a task that watches them are read again on the new head before the gate waits again.
        'branch.moved': [
          { guard: and(['headMoved', 'watchesChecks']), target: 'awaitingChecks', actions: 'recordHead' },
          { guard: 'headMoved', actions: 'recordHead' },
        ],
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'deploy' } } },
        'base.moved': { guard: 'updateDue', target: 'implementing', actions: 'startUpdateRound' },
        'review.human_changes_requested': [
          { guard: 'hasReviewerRoundsLeft', target: 'implementing', actions: 'recordHumanReview' },
          { actions: 'recordReviewerLimit' },
        ],
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'deploy' } },
            target: 'deploying',
            actions: { type: 'recordDecision', params: { gate: 'deploy' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'deploy', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'deploy' } }, 'addImplementFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'deploy' } } },
        ],
        'gate.timer_fired': [
          { guard: { type: 'remindDue', params: { gate: 'deploy' } }, actions: { type: 'recordReminder', params: { gate: 'deploy' } } },
          {
            guard: { type: 'expiryDue', params: { gate: 'deploy', onExpire: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordExpiry', params: { gate: 'deploy' } }, { type: 'addTimeoutFeedback', params: { gate: 'deploy' } }],
          },
          {
            guard: { type: 'expiryDue', params: { gate: 'deploy', onExpire: 'cancel' } },
            target: 'cancelled',
            actions: [{ type: 'recordExpiry', params: { gate: 'deploy' } }, { type: 'recordTimeoutCancel', params: { gate: 'deploy' } }],
          },
          {
            guard: { type: 'escalationPassesGate', params: { gate: 'deploy' } },
            target: 'deploying',
            actions: { type: 'recordExpiry', params: { gate: 'deploy' } },
          },
          { guard: { type: 'expiryDue', params: { gate: 'deploy', onExpire: 'escalate' } }, actions: { type: 'recordExpiry', params: { gate: 'deploy' } } },
        ],
      },
    },
    deploying: {
      entry: [
        { type: 'startStage', params: { stage: 'deploy' } },
        { type: 'dispatchJob', params: { stage: 'deploy' } },
      ],
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'deploy' } } },
        'deploy.succeeded': {
          guard: 'isCurrentJob',
          target: 'done',
          actions: [{ type: 'endStage', params: { outcome: 'deployed' } }, 'recordDeploy'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'deploy' } },
          ],
        },
      },
    },
    done: { type: 'final' },
    failed: {
      on: {
        'branch.moved': { guard: 'headMoved', actions: 'recordHead' },
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: null } } },
        'task.retry': (['plan', 'implement', 'review', 'deploy'] as const).map((stage) => ({
          guard: { type: 'failedAt' as const, params: { stage } },
          target: FAILED_STAGE_TARGET[stage],
        })),
      },
    },
    cancelled: { type: 'final' },
  },
});

export type TaskMachine = typeof taskMachine;
