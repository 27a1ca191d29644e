/**
 * The phases fcp and fsum go through, as their jobs announce them to the progress
 * display (phases/*.ts, sum-job.ts: `progress?.phase(key)` where each step starts), and
 * what the line calls them. The keys are the step names the jobs use in their comments.
 */
export const PHASES = {
  checkpoint: { label: 'opening the checkpoint', counts: null },
  walk: { label: 'walking', counts: 'entries' },
  plan: { label: 'planning', counts: null },
  mkdir: { label: 'creating directories', counts: null },
  copy: { label: 'copying', counts: 'data' },
  finish: { label: 'finishing large files', counts: null },
  links: { label: 'making hard links', counts: null },
  delete: { label: 'deleting extras', counts: null },
  'dir metadata': { label: 'setting directory metadata', counts: null },
  verify: { label: 'verifying', counts: 'data' },
  report: { label: 'writing the report', counts: null },
  // fsum
  hash: { label: 'hashing', counts: 'data' },
  combine: { label: 'combining chunk digests', counts: null },
  signature: { label: 'summing the signature', counts: null },
  records: { label: 'gathering records', counts: null },
} as const satisfies Record<string, { label: string; counts: 'entries' | 'data' | null }>;

export type PhaseKey = keyof typeof PHASES;
