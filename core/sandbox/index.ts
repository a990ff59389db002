/** Where model-written commands run: bubblewrap when it works here, else (only if allowed) no isolation. */
export { createSandbox, sandboxEnv, withEgress } from './sandbox.js';
export type { CreateSandboxOptions, Sandbox, SandboxEgress, SandboxRunOptions } from './sandbox.js';
export { EgressRule, EgressRules } from './egress-rules.js';
export { detectBwrap } from './detect-bwrap.js';
export type { BwrapStatus } from './detect-bwrap.js';
