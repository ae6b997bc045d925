import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

/**
 * `--hub-cpu-prof DIR`: Node 20 refuses `--cpu-prof` in NODE_OPTIONS, so hubs are started with
 * `NODE_OPTIONS=--import tsx --import <this file>` and CORRAL_BENCH_CPU_PROFILE=<file>: the profiler runs from the
 * first line, and the profile is written as the process exits (an in-thread inspector session answers at once).
 */
const file = process.env.CORRAL_BENCH_CPU_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
