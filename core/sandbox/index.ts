/** Where model-written commands run: bubblewrap when it works here, else (only if allowed) no isolation. */
export { createSandbox, sandboxEnv } from './sandbox.js';
export type { CreateSandboxOptions, Sandbox, SandboxRunOptions } from './sandbox.js';
export { detectBwrap } from './detect-bwrap.js';
export type { BwrapStatus } from './detect-bwrap.js';
