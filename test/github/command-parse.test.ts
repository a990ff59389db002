import { describe, expect, it } from 'vitest';
import { isBot, parseCommand } from '../../orchestrator/github/command-parse.js';

describe('parseCommand', () => {
  it.each([
    ['/approve', { name: 'approve' }],
    ['/approve looks good', { name: 'approve', comment: 'looks good' }],
    ['  /APPROVE  ship it \r\n', { name: 'approve', comment: 'ship it' }],
    ['/approve 1a2b3c4', { name: 'approve', sha: '1a2b3c4' }],
    ['/approve 1A2B3C4D5E6F ship it', { name: 'approve', sha: '1a2b3c4d5e6f', comment: 'ship it' }],
    ['/approve 1a2b3c ship it', { name: 'approve', comment: '1a2b3c ship it' }],
    ['/approve shipit99 now', { name: 'approve', comment: 'shipit99 now' }],
    ['/reject', { name: 'reject' }],
    ['/reject the plan skips the tests', { name: 'reject', reason: 'the plan skips the tests' }],
    ['/reject\nfirst, the tests\nsecond, the docs', { name: 'reject', reason: 'first, the tests\nsecond, the docs' }],
    ['/retry', { name: 'retry' }],
    ['/retry please', { name: 'retry' }],
    ['/cancel', { name: 'cancel' }],
    ['/cancel not needed any more', { name: 'cancel', reason: 'not needed any more' }],
    ['/status', { name: 'status' }],
  ])('reads %j as a command', (body, expected) => {
    expect(parseCommand(body)).toEqual(expected);
  });

  it.each([
    ['Looks good to me'],
    ['please /approve this'],
    ['/approved'],
    ['/deploy now'],
    ['> /approve\nquoting someone'],
    [''],
  ])('reads %j as no command', (body) => {
    expect(parseCommand(body)).toBeUndefined();
  });
});

describe('isBot', () => {
  it('treats Bot accounts, [bot] logins and our own login as bots, case-insensitively', () => {
    expect(isBot({ login: 'renovate', type: 'Bot' }, undefined)).toBe(true);
    expect(isBot({ login: 'stagegate[bot]', type: 'User' }, undefined)).toBe(true);
    expect(isBot({ login: 'Stagegate-Machine', type: 'User' }, 'stagegate-machine')).toBe(true);
    expect(isBot({ login: 'octocat', type: 'User' }, 'stagegate-machine')).toBe(false);
  });
});
