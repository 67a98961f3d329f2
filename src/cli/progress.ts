/**
 * Progress for long work: a bar with rate and ETA on a terminal, plain lines (every few seconds) otherwise,
 * so CI logs and `| tee` stay readable. Written to stderr: stdout is for data.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 5000;

export function makeProgress(label: string, stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted} | {detail}`, hideCursor: true, stream, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    let running = false;
    return {
      update: (done, total, detail = '') => {
        const rate = (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
        if (!running) {
          bar.start(total, done, { rate, detail });
          running = true;
        }
        bar.setTotal(total);
        bar.update(done, { rate, detail });
      },
      stop: () => running && bar.stop(),
    };
  }
  const started = Date.now();
  let last = 0;
  let lastDone = -1;
  return {
    update: (done, total, detail = '') => {
      const now = Date.now();
      const finished = done >= total && total > 0;
      if ((now - last < PLAIN_EVERY_MS && !finished) || done === lastDone) return;
      last = now;
      lastDone = done;
      const seconds = Math.max(0.001, (now - started) / 1000);
      const rate = done / seconds;
      const eta = rate > 0 && total > done ? `${Math.ceil((total - done) / rate)}s` : '-';
      stream.write(`${label}: ${done}/${total} (${total ? Math.floor((100 * done) / total) : 0}%) ${rate.toFixed(1)}/s ETA ${eta}${detail ? ` ${detail}` : ''}\n`);
    },
    stop: () => undefined,
  };
}
