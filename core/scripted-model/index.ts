/** The scripted model server: a Responses API (and Chat Completions) endpoint that answers from a script. */
export { startScriptedModelServer } from './server.js';
export type { ScriptedModelServer, ScriptedModelServerOptions } from './server.js';
export { Answer, ErrorAnswer, OutputItem, ScriptFile, loadScriptFile } from './script.js';
export type { AnswerFn, Script, ScriptedAnswer, ScriptSource } from './script.js';
export { RecordedRequest, ResponsesRequestBody } from './request.js';
