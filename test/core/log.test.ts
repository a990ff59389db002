import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';

function capture() {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out += chunk.toString();
      done();
    },
  });
  return { log: createLogger({ destination }), read: () => out };
}

describe('log redaction', () => {
  it('blanks tokens, keys and secrets wherever config-shaped objects put them', () => {
    const { log, read } = capture();
    log.info(
      {
        apiKey: 'sk-1',
        model: { apiKey: 'sk-2' },
        slack: { botToken: 'xoxb-3', appToken: 'xapp-4', signingSecret: 's5' },
        api: { tokens: [{ principal: 'api:bot', token: 'tok-6' }] },
        headers: { authorization: 'Bearer 7', Authorization: 'Bearer 8' },
        github: { token: 'ghp_9', app: { privateKey: 'PEM-10' }, webhookSecret: 'w11' },
      },
      'configuration loaded',
    );
    const line = read();
    expect(line).toContain('configuration loaded');
    expect(line).toContain('api:bot');
    for (const secret of ['sk-1', 'sk-2', 'xoxb-3', 'xapp-4', 's5"', 'tok-6', 'Bearer 7', 'Bearer 8', 'ghp_9', 'PEM-10', 'w11']) {
      expect(line, secret).not.toContain(secret);
    }
  });
});
