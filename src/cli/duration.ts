/**
 * --time-limit's durations, on their own so that they can be tested without the CLI's
 * launch modules.
 */
/** A duration: `3h50m`, `90s`, `45m`, `1d12h`, or plain seconds (`5400`), in seconds. */
export function parseDuration(v: string): number | null {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) > 0 ? Number(v) : null;
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(v);
  if (!m || v === '') return null;
  const s = Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return s > 0 ? s : null;
}
