// Types of bench/netns-lab.mjs, for test/helpers/netns.ts.

export function ip(args: string[], check?: boolean): { status: number | null; out: string };
export function netnsProbe(name: string): string | null;
export function buildBridgedLab(sw: string, hosts: { ns: string; addr: string; port: string }[], iface: string): void;
