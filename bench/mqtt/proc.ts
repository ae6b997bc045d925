import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

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

/** CPU seconds a process has used so far (user + system, from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the command name may hold spaces
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime: fields 14 and 15 of stat(5)
}

/** USER_HZ: 100 on every Linux port Node runs on. */
const CLOCK_TICKS = 100;

/** Starts measuring the named processes' CPU use; `stop()` says how busy each was, in % of one core. */
export function cpuMeter(pids: Readonly<Record<string, number>>): { stop(): string } {
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    stop: () => {
      const wall = (performance.now() - t0) / 1000;
      return Object.entries(pids).map(([name, pid]) => `${name} ${Math.round((100 * (cpuSeconds(pid) - start[name])) / wall)}%`).join(', ');
    },
  };
}

/** The running Mosquitto's pid (its pid file, else the first process named mosquitto), or undefined. */
export function mosquittoPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/run/mosquitto/mosquitto.pid', 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'mosquitto') return pid;
  } catch { /* no pid file: look for it */ }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'mosquitto') return Number(entry);
    } catch { /* gone meanwhile */ }
  }
  return undefined;
}
