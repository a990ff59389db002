/**
 * Values every secret scanner flags, made when the tests run so that no credential-shaped string
 * sits in this repository's own source (where GitHub's push protection would stop it too). None
 * of them grants anything anywhere.
 */
import { generateKeyPairSync } from 'node:crypto';

/** An AWS access key id: AKIA and 16 upper-case letters or digits. */
export const AWS_ACCESS_KEY_ID = ['AKIA', 'Q7W2E9R4T6Y1U3I8'].join('');

/** A classic GitHub personal access token: ghp_ and 36 characters. */
export const GITHUB_TOKEN = ['ghp', 'Zq8R1xW4mN7bV2cT5yH9kL3pD6fG0sJ4aE1u'].join('_');

/** A real (throwaway) RSA private key in PEM, as a careless commit would hold one. */
export const PRIVATE_KEY_PEM = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;

/** Ordinary code that names secrets without holding any: nothing here may be reported. */
export const ORDINARY_CODE = [
  'const token = process.env.TOKEN;',
  'const apiKey = config.model.apiKey ?? process.env.OPENAI_API_KEY;',
  'export interface Credentials { password: string; secretAccessKey: string }',
  "const headers = { authorization: `Bearer ${token}` };",
  "const url = new URL('https://api.example.com/v1/users');",
  "const sha = 'e83c5163316f89bfbde7d9ab23ca2e25604af290';",
  "it('rejects a missing GITHUB_TOKEN', () => expect(load({ GITHUB_TOKEN: '' })).toThrow());",
  '',
].join('\n');
