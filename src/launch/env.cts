/**
 * Which launcher started this process, read from the environment alone (no MPI library).
 *
 * Order matters: fcp's own self-launch variables first (they are set by the parent of
 * a `-np N` run), then OpenMPI, PMIx, MPICH/Hydra, and Slurm. mpirun under Slurm sets
 * both OpenMPI and Slurm variables; the MPI ones describe the ranks we are part of.
 *
 * CommonJS: bin/ reads it before the program's ES modules load (see self-launch.cts).
 */
export type LauncherKind = 'self' | 'openmpi' | 'pmix' | 'mpich' | 'slurm' | 'none';

export interface LaunchInfo {
  kind: LauncherKind;
  rank: number;
  size: number;
  /** Identifies this job among others sharing a rendezvous directory; null when the launcher gives none. */
  jobKey: string | null;
  /** True when the launcher says every rank runs on this host (then loopback suffices). */
  allLocal: boolean;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

function check(kind: LauncherKind, rank: number | undefined, size: number | undefined): void {
  if (rank === undefined || size === undefined || size < 1 || rank >= size) {
    throw new Error(`the ${kind} launcher environment is incomplete or inconsistent (rank ${rank}, size ${size})`);
  }
}

export function detectLauncher(env: Env = process.env): LaunchInfo {
  const explicitKey = env.FCP_JOB_ID || null;

  if (env.FCP_RANK !== undefined) {
    const rank = int(env, 'FCP_RANK');
    const size = int(env, 'FCP_SIZE');
    check('self', rank, size);
    return { kind: 'self', rank: rank!, size: size!, jobKey: explicitKey, allLocal: env.FCP_ALL_LOCAL === '1' };
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    const rank = int(env, 'OMPI_COMM_WORLD_RANK');
    const size = int(env, 'OMPI_COMM_WORLD_SIZE');
    check('openmpi', rank, size);
    const job = env.OMPI_MCA_ess_base_jobid ?? env.PMIX_NAMESPACE;
    return {
      kind: 'openmpi', rank: rank!, size: size!,
      jobKey: explicitKey ?? (job ? `ompi-${job}` : null),
      allLocal: int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE') === size,
    };
  }
  if (env.PMIX_RANK !== undefined && env.PMIX_NAMESPACE !== undefined) {
    // PMIx alone does not export the job size; launchers built on it (prrte) set PMIX_SIZE
    // or leave it to Slurm's variables.
    const rank = int(env, 'PMIX_RANK');
    const size = int(env, 'PMIX_SIZE') ?? int(env, 'SLURM_NTASKS') ?? int(env, 'SLURM_NPROCS');
    check('pmix', rank, size);
    return { kind: 'pmix', rank: rank!, size: size!, jobKey: explicitKey ?? `pmix-${env.PMIX_NAMESPACE}`, allLocal: false };
  }
  if (env.PMI_RANK !== undefined) {
    const rank = int(env, 'PMI_RANK');
    const size = int(env, 'PMI_SIZE');
    check('mpich', rank, size);
    // Hydra exports no job id; under Slurm use Slurm's, else the user must give --job-id
    // when several jobs share a rendezvous directory.
    const slurm = env.SLURM_JOB_ID ? `slurm-${env.SLURM_JOB_ID}.${env.SLURM_STEP_ID ?? '0'}` : null;
    const kvs = env.PMI_KVSNAME ? `mpich-${env.PMI_KVSNAME}` : null;
    return {
      kind: 'mpich', rank: rank!, size: size!, jobKey: explicitKey ?? slurm ?? kvs,
      allLocal: int(env, 'MPI_LOCALNRANKS') === size,
    };
  }
  if (env.SLURM_PROCID !== undefined && (env.SLURM_STEP_ID !== undefined || env.SLURM_STEPID !== undefined)) {
    const rank = int(env, 'SLURM_PROCID');
    const size = int(env, 'SLURM_NTASKS') ?? int(env, 'SLURM_NPROCS');
    check('slurm', rank, size);
    const step = env.SLURM_STEP_ID ?? env.SLURM_STEPID;
    return {
      kind: 'slurm', rank: rank!, size: size!,
      jobKey: explicitKey ?? `slurm-${env.SLURM_JOB_ID ?? 'nojob'}.${step}`,
      allLocal: int(env, 'SLURM_STEP_NUM_NODES') === 1 || int(env, 'SLURM_NNODES') === 1,
    };
  }
  return { kind: 'none', rank: 0, size: 1, jobKey: explicitKey, allLocal: true };
}
