/** `stagegate dead-letters [list|redrive|drop]`: the messages no consumer could handle, and what to do with each. */
import type { Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { dropDeadLetter, listDeadLetters, redriveDeadLetter, type DeadLetter } from '../../core/bus/dead-letters.js';
import { StagegateError } from '../../core/errors.js';
import { print } from '../print.js';
import { openRuntime } from '../runtime.js';

async function withBus<T>(command: Command, run: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const { nc } = await openRuntime(command, 'cli');
  try {
    return await run(nc);
  } finally {
    await nc.drain();
  }
}

function sequenceOf(text: string): number {
  const seq = Number(text);
  if (!Number.isInteger(seq) || seq <= 0) throw new StagegateError('SCHEMA_INVALID', `expected a dead letter's number (see stagegate dead-letters), got '${text}'`);
  return seq;
}

function formatDeadLetter(letter: DeadLetter): string {
  const tries = letter.deliveries === 1 ? '1 delivery' : `${letter.deliveries} deliveries`;
  return `${letter.seq}  ${letter.deadAt}  ${letter.subject}  (${tries}, given up by ${letter.consumer})\n    ${letter.reason}`;
}

export function registerDeadLetters(program: Command): void {
  const deadLetters = program
    .command('dead-letters')
    .description('messages no consumer could handle (malformed, for an unknown task, or failing every try), kept with why');

  deadLetters
    .command('list', { isDefault: true })
    .description('show the dead letters, oldest first')
    .option('--task <taskId>', "only those sent to this task's inbox")
    .option('--json', 'print JSON')
    .action(async (o: { task?: string; json?: boolean }, command: Command) => {
      await withBus(command, async (nc) => {
        const letters = await listDeadLetters(nc, o.task === undefined ? {} : { taskId: o.task });
        print(o.json, letters, letters.length === 0 ? 'no dead letters' : letters.map(formatDeadLetter).join('\n'));
      });
    });

  const onEach = (name: string, description: string, act: (nc: NatsConnection, seq: number) => Promise<string>) =>
    deadLetters
      .command(name)
      .description(description)
      .argument('<number...>', 'the numbers `stagegate dead-letters` shows')
      .action(async (numbers: string[], _o: unknown, command: Command) => {
        const seqs = numbers.map(sequenceOf);
        await withBus(command, async (nc) => {
          for (const seq of seqs) console.log(await act(nc, seq));
        });
      });
  onEach('redrive', 'send dead letters back where they came from (once their cause is fixed) and remove them from the list', async (nc, seq) => {
    const letter = await redriveDeadLetter(nc, seq);
    return `dead letter ${seq} sent again to ${letter.subject}`;
  });
  onEach('drop', 'delete dead letters for good', async (nc, seq) => {
    const letter = await dropDeadLetter(nc, seq);
    return `dead letter ${seq} (${letter.subject}) deleted`;
  });
}
