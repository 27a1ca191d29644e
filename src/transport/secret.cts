/**
 * The job secret's size. Its own module, CommonJS, because the self-launch (CommonJS,
 * loaded first by bin/) imports it before anything else: it must not pull in the codec
 * (msgpackr takes ~20 ms to load, and every millisecond before the other ranks are
 * spawned is added to the job's startup).
 */
export const SECRET_BYTES = 16;
