import { readdirSync, readFileSync } from 'node:fs';

/** What /proc says about processes on this machine (Linux). */

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** The soft limit on open files of a process ('self' for this one); Infinity when unlimited. */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  const m = /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  if (!m) throw new Error(`no open-files limit for process ${pid}`);
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** How many files a process has open now. */
export function openFiles(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
