/**
 * The Slack WebClient's requests with configured secrets taken out of what they say. Slack's Web
 * API takes form-encoded fields (`text`, `blocks` as JSON, `view`, …); each is redacted but
 * `token`, the API's own credential field, which must reach Slack as it is.
 */
import type { webApi } from '@slack/bolt';
import type { RedactSecrets } from '../../../core/security/redact-secrets.js';

export function redactedSlackFetch(redact: RedactSecrets): webApi.FetchFunction {
  return (url, init) => {
    if (typeof init?.body !== 'string') return fetch(url, init);
    const form = new URLSearchParams(init.body);
    for (const [name, value] of form) if (name !== 'token') form.set(name, redact(value));
    return fetch(url, { ...init, body: form.toString() });
  };
}
