/** The coder's patch engine for the OpenAI Codex `apply_patch` format. */
export { applyPatch } from './apply-patch.js';
export type { AppliedPatch, ApplyPatchOptions } from './apply-patch.js';
export { parsePatch } from './parse-patch.js';
export type { PatchOperation, UpdateChunk } from './parse-patch.js';
