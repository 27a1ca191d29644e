// Types of bench/cluster-lab.mjs, for test/integration/cluster.test.ts.

export const SUBNET: string;

export interface ClusterNode { index: number; ns: string; addr: string }

export interface RankResult {
  rank: number;
  node: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** user + system CPU seconds of the rank (GNU time), or null */
  cpuS: number | null;
}

/** latfs's final stats JSON (the fields the callers read). */
export interface LatfsStats {
  total_requests: number;
  ops: Record<string, number>;
  setattr?: Record<string, number>;
  peak_concurrent_sleeps: number;
  [key: string]: unknown;
}

export interface ClusterLab {
  nodes: ClusterNode[];
  mount(o: { back: string; mnt: string; metaUs: number; dataUs?: number; latfsArgs?: string[]; workDir: string; count?: number }): void;
  unmount(): Promise<{ node: number; stats: LatfsStats; cpuS: number | null }[]>;
  run(fcpBin: string, args: string[], o: { ranksPerNode: number; workDir: string; timeoutMs?: number; env?: Record<string, string>; nodeArgs?: string[] }):
    Promise<{ wallS: number; ranks: RankResult[] }>;
  teardown(): void;
}

export function clusterUnavailable(): string | null;
export function setupCluster(nodes: number): ClusterLab;
export function cpusAvailable(): number;
