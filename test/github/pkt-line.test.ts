import { describe, expect, it } from 'vitest';
import { ZERO_SHA, addCapabilities, encodeLine, flush, parseReceivePackRequest, rejectionReport } from '../../orchestrator/github/pkt-line.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('pkt-lines', () => {
  it('reads the ref updates, the capabilities and the pack of a push', () => {
    const body = Buffer.concat([
      encodeLine(`${A} ${B} refs/heads/stagegate/1-x\0report-status-v2 side-band-64k push-options agent=git/2.39\n`),
      encodeLine(`${ZERO_SHA} ${B} refs/heads/main\n`),
      flush(),
      encodeLine('ci.skip\n'),
      flush(),
      Buffer.from('PACK...'),
    ]);

    expect(parseReceivePackRequest(body)).toEqual({
      updates: [
        { before: A, after: B, ref: 'refs/heads/stagegate/1-x' },
        { before: ZERO_SHA, after: B, ref: 'refs/heads/main' },
      ],
      capabilities: ['report-status-v2', 'side-band-64k', 'push-options', 'agent=git/2.39'],
      pack: Buffer.from('PACK...'),
    });
  });

  it('refuses what is not a ref update', () => {
    expect(() => parseReceivePackRequest(Buffer.concat([encodeLine('hello there\n'), flush()]))).toThrow(/not a ref update command/);
    expect(() => parseReceivePackRequest(Buffer.from('00zz'))).toThrow(/bad pkt-line length/);
  });

  it('adds capabilities to the first ref line of the receive-pack advertisement only', () => {
    const advertisement = Buffer.concat([encodeLine('# service=git-receive-pack\n'), flush(), encodeLine(`${A} refs/heads/main\0report-status ofs-delta\n`), encodeLine(`${B} refs/heads/dev\n`), flush()]);

    const out = addCapabilities(advertisement, ['no-thin']).toString('latin1');

    expect(out).toBe(`001f# service=git-receive-pack\n0000${encodeLine(`${A} refs/heads/main\0report-status ofs-delta no-thin\n`).toString('latin1')}${encodeLine(`${B} refs/heads/dev\n`).toString('latin1')}0000`);
  });

  it('answers a refusal as report-status in side band 1, with the message in band 2', () => {
    const report = rejectionReport([{ ref: 'refs/heads/main', reason: 'not allowed' }], ['side-band-64k'], 'refused');
    const text = report.toString('latin1');

    expect(text).toContain('\x02refused\n');
    expect(text).toContain(`\x01${encodeLine('unpack ok\n').toString('latin1')}${encodeLine('ng refs/heads/main not allowed\n').toString('latin1')}0000`);
    expect(text.endsWith('0000')).toBe(true);
  });
});
