/** The coder's tools: their definitions for the model, the one entry point that runs a call. */
export { executeToolCall, toolDefinitions } from './registry.js';
export { findApprovalPattern, validateApprovalPatterns } from './approval.js';
export { commandText } from './shell.js';
