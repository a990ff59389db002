import { z } from 'zod';

/** The coder's reply: one patch in the apply_patch format and a summary for the reviewer. */
export const CoderReply = z.object({
  summary: z.string().min(1),
  patch: z.string().min(1),
});
export type CoderReply = z.infer<typeof CoderReply>;
