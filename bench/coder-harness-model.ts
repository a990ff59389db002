/**
 * The coder-harness benchmark's model: the scripted model server, run as a child process so its
 * work never counts as the harness's (the harness's CPU time is its own process's). It serves
 * the session's turns in order and a handover note for each compaction request; asked for a
 * report over IPC, it measures what a prefix cache could have served from the requests it got.
 */
import type { AnswerFn, RecordedRequest } from '../core/scripted-model/index.js';
import { startScriptedModelServer } from '../core/scripted-model/index.js';
import { cachedTokens, countTokens, serializePrompt } from '../core/scripted-model/simulated-usage.js';
import { compactionNote, modelTurn, SESSION_TURNS, type ModelProcessMessage, type PrefixReport } from './coder-session.js';


/** Compaction requests the script can answer on top of the session's turns. */
const EXTRA_ANSWERS = 20;
const send = process.send?.bind(process);
if (send === undefined) throw new Error('coder-harness-model runs as a child process with an IPC channel');

let turn = 0;
const answer: AnswerFn = (request) => (request.body.tool_choice === 'none' ? compactionNote(turn) : modelTurn(++turn));
const server = await startScriptedModelServer({ script: { answers: {} } });
server.enqueue('coder', ...Array<AnswerFn>(SESSION_TURNS + EXTRA_ANSWERS).fill(answer));
const ready: ModelProcessMessage = { type: 'ready', url: server.url };
send(ready);
process.on('message', (message: unknown) => {
  if (message !== 'report') return;
  const report = reportPrefixes(server.requests);
  const reply: ModelProcessMessage = { type: 'report', report };
  void server.close().then(() => send(reply, () => process.disconnect()));
});

function reportPrefixes(requests: readonly RecordedRequest[]): PrefixReport {
  const report: PrefixReport = { requests: requests.length, compactionRequests: 0, inputTokens: 0, prefixTokens: 0, bestPrefixTokens: 0, cachedTokens: 0 };
  let previous: { prompt: string; compaction: boolean } | undefined;
  for (const request of requests) {
    const prompt = serializePrompt(request.body);
    const compaction = request.body.tool_choice === 'none';
    if (compaction) report.compactionRequests += 1;
    report.inputTokens += countTokens(prompt.length);
    if (previous !== undefined) {
      // Right after a compaction the conversation is new by design: only instructions, tools and task message can stay.
      const best = previous.compaction ? stablePrefixChars(request) : Math.min(previous.prompt.length, prompt.length);
      report.bestPrefixTokens += Math.floor(best / 4);
      report.prefixTokens += Math.floor(Math.min(best, commonPrefix(previous.prompt, prompt)) / 4);
      report.cachedTokens += cachedTokens(previous.prompt, prompt);
    }
    previous = { prompt, compaction };
  }
  return report;
}

/** Characters of instructions, tools and the first input item, as `serializePrompt` lays them out. */
function stablePrefixChars(request: RecordedRequest): number {
  const first = Array.isArray(request.body.input) ? request.body.input[0] : undefined;
  return JSON.stringify(request.body.instructions ?? '').length + JSON.stringify(request.body.tools ?? []).length + 1 + JSON.stringify(first ?? '').length;
}

function commonPrefix(a: string, b: string): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}
