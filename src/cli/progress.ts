/**
 * Progress for long work: one self-drawn line with bar, rate and ETA on a terminal, plain lines (every few
 * seconds) otherwise, so CI logs and `| tee` stay readable. Written to stderr: stdout is for data.
 *
 * The terminal line is rendered here rather than by a format string, so that it always fits the terminal's
 * width: when space runs short, lower-priority parts shrink or go first (see `renderProgressLine`), and text
 * is only ever cut between words, never inside a number or a word.
 */

export interface Progress {
  /** `total` undefined (or not above 0): not known yet — no percentage, bar or ETA is shown. */
  update(done: number, total: number | undefined, detail?: string): void;
  stop(): void;
}

/** What one progress line says; `renderProgressLine` decides how much of it fits. */
export interface ProgressLine {
  readonly label: string;
  readonly done: number;
  readonly total?: number | undefined;
  readonly ratePerSecond?: number | undefined;
  readonly etaSeconds?: number | undefined;
  readonly detail?: string | undefined;
}

/** The stream a progress display writes to: process.stderr, or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
  on(event: 'resize', listener: () => void): unknown;
  off(event: 'resize', listener: () => void): unknown;
}

const PLAIN_EVERY_MS = 5000;
/** Terminal redraws at most this often; the final state is always drawn by stop(). */
const REDRAW_EVERY_MS = 100;
/** Width assumed when the stream does not say (not a terminal, or a terminal that does not report it). */
const DEFAULT_COLUMNS = 80;
/** The rate is measured over the last this many ms, so a pause or a change of pace shows within seconds. */
const RATE_WINDOW_MS = 10_000;
/** Below this span of samples there is no rate yet (and so no ETA) rather than a wild one. */
const RATE_MIN_SPAN_MS = 1000;
const BAR_MIN = 10;
const BAR_MAX = 30;
const ELLIPSIS = '…';
const SEPARATOR = ' | ';
const CLEAR_TO_END = '\x1b[K';

/** Code points, which is what a terminal counts for the single-width characters used here. */
function width(text: string): number {
  return [...text].length;
}

/** A non-negative integer in full digits: `String(1e21)` would be `1e+21`, which is not a count. */
function integer(n: number): string {
  return Number.isFinite(n) && n > 0 ? BigInt(Math.floor(n)).toString() : '0';
}

function knownTotal(total: number | undefined): total is number {
  return total !== undefined && Number.isFinite(total) && total > 0;
}

/** `ETA 42s`, `ETA 3m10s`, `ETA 1h05m`; undefined for anything that is not a sensible time left. */
export function formatEta(seconds: number | undefined): string | undefined {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return undefined;
  const s = Math.ceil(seconds);
  if (s < 60) return `ETA ${s}s`;
  if (s < 3600) return `ETA ${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const minutes = Math.ceil(s / 60);
  return `ETA ${integer(Math.floor(minutes / 60))}h${String(minutes % 60).padStart(2, '0')}m`;
}

function formatRate(rate: number | undefined): string | undefined {
  if (rate === undefined || !Number.isFinite(rate) || rate <= 0) return undefined;
  return `${rate >= 100 ? integer(Math.round(rate)) : rate.toFixed(1)}/s`;
}

/** One line of text: a file name or a detail with a newline or control character would break the redraw. */
function oneLine(text: string | undefined): string {
  return (text ?? '')
    .replace(/\p{Cc}/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The longest run of whole words of `text` that fits `room` with "…" appended (a trailing comma dropped), or
 * undefined when not even the first word fits: a cut never lands inside a word or a number. Nor right after a
 * bare number whose word follows: "418 ok, 2…" would read as a number cut short, so that gives "418 ok…".
 */
function cutAtWord(text: string, room: number): string | undefined {
  const words = text.split(' ');
  for (let n = words.length - 1; n >= 1; n -= 1) {
    if (/^\d+$/.test(words[n - 1] as string)) continue;
    const cut = `${words
      .slice(0, n)
      .join(' ')
      .replace(/[,;:]$/, '')}${ELLIPSIS}`;
    if (width(cut) <= room) return cut;
  }
  return undefined;
}

function bar(done: number, total: number, cells: number): string {
  const filled = Math.max(0, Math.min(cells, Math.floor((cells * done) / total)));
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}]`;
}

/**
 * The progress line for a terminal `columns` wide, never longer than that (in code points). In full:
 * `label [####------] 42% | 420/1000 | 12.5/s | ETA 46s | detail`. When that does not fit, in this order: the
 * bar shrinks (down to BAR_MIN cells) and then goes, then the rate, then the ETA; then the detail is cut after
 * a whole word with "…" and then goes; then the percentage; then the label is cut after a word and then goes.
 * The counts go last. No ETA is shown without a known total, a positive rate and work left.
 */
export function renderProgressLine(line: ProgressLine, columns: number): string {
  const room = Number.isFinite(columns) ? Math.max(0, Math.floor(columns)) : DEFAULT_COLUMNS;
  const known = knownTotal(line.total);
  const done = integer(line.done);
  const counts = known ? `${done}/${integer(line.total as number)}` : done;
  const percent = known ? `${Math.max(0, Math.min(100, Math.floor((100 * Math.max(0, line.done)) / (line.total as number))))}%` : undefined;
  const rate = formatRate(line.ratePerSecond);
  const left = known && line.done < (line.total as number);
  const eta = known && left && rate !== undefined ? formatEta(line.etaSeconds) : undefined;
  const label = oneLine(line.label) || undefined;
  const detail = oneLine(line.detail) || undefined;

  interface Shape {
    bar: boolean;
    rate: boolean;
    eta: boolean;
    detail: 'full' | 'cut' | 'none';
    percent: boolean;
    label: 'full' | 'cut' | 'none';
  }
  // `flex` is the text standing in for the one part that takes whatever room is left (bar, cut detail or label).
  const compose = (shape: Shape, flex: { bar?: string; detail?: string; label?: string }): string => {
    const head = [
      shape.label === 'none' ? undefined : shape.label === 'cut' ? flex.label : label,
      shape.bar ? flex.bar : undefined,
      shape.percent ? percent : undefined,
    ]
      .filter((part) => part !== undefined && part !== '')
      .join(' ');
    const shownDetail = shape.detail === 'none' ? undefined : shape.detail === 'cut' ? flex.detail : detail;
    return [head, counts, shape.rate ? rate : undefined, shape.eta ? eta : undefined, shownDetail]
      .filter((part) => part !== undefined && part !== '')
      .join(SEPARATOR);
  };
  const full: Shape = { bar: known, rate: true, eta: true, detail: 'full', percent: true, label: 'full' };
  const shapes: Shape[] = [
    full,
    { ...full, bar: false },
    { ...full, bar: false, rate: false },
    { ...full, bar: false, rate: false, eta: false },
    { ...full, bar: false, rate: false, eta: false, detail: 'cut' },
    { ...full, bar: false, rate: false, eta: false, detail: 'none' },
    { ...full, bar: false, rate: false, eta: false, detail: 'none', percent: false },
    { bar: false, rate: false, eta: false, detail: 'none', percent: false, label: 'cut' },
    { bar: false, rate: false, eta: false, detail: 'none', percent: false, label: 'none' },
  ];
  for (const shape of shapes) {
    if (shape.bar) {
      // The bar gets what the rest leaves, within BAR_MIN..BAR_MAX cells (plus its two brackets).
      const cells = Math.min(BAR_MAX, room - width(compose(shape, { bar: '' })) - 3);
      if (cells >= BAR_MIN) return compose(shape, { bar: bar(line.done, line.total as number, cells) });
      continue;
    }
    if (shape.detail === 'cut' || shape.label === 'cut') {
      const text = shape.detail === 'cut' ? detail : label;
      if (text === undefined) continue;
      const others = width(compose(shape, { detail: ELLIPSIS, label: ELLIPSIS })) - 1;
      const cut = cutAtWord(text, room - others);
      if (cut !== undefined) return compose(shape, shape.detail === 'cut' ? { detail: cut } : { label: cut });
      continue;
    }
    const text = compose(shape, {});
    if (width(text) <= room) return text;
  }
  // Narrower than the counts themselves: nothing rather than half a number.
  return '';
}

/** Work per second over the last RATE_WINDOW_MS; starts over when the count goes back or the total changes. */
class RateMeter {
  private samples: { t: number; done: number }[] = [];
  private total: number | undefined;

  add(now: number, done: number, total: number | undefined): void {
    const last = this.samples.at(-1);
    if (!last || done < last.done || total !== this.total) this.samples = [];
    this.total = total;
    this.samples.push({ t: now, done });
    // Keep one sample at or before the window's start, so the rate spans the whole window.
    while (this.samples.length > 2 && (this.samples[1] as { t: number }).t <= now - RATE_WINDOW_MS) this.samples.shift();
  }

  /** undefined until the samples span RATE_MIN_SPAN_MS. Measured up to `now`, so a stall brings it down. */
  rate(now: number): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || now - first.t < RATE_MIN_SPAN_MS) return undefined;
    return (last.done - first.done) / ((now - first.t) / 1000);
  }
}

function etaOf(done: number, total: number | undefined, rate: number | undefined): number | undefined {
  return knownTotal(total) && rate !== undefined && rate > 0 && done < total ? (total - done) / rate : undefined;
}

export function makeProgress(label: string, stream: ProgressStream = process.stderr, quiet = false): Progress {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  return stream.isTTY ? terminalProgress(label, stream) : plainProgress(label, stream);
}

function terminalProgress(label: string, stream: ProgressStream): Progress {
  const meter = new RateMeter();
  let state: { done: number; total: number | undefined; detail: string } | undefined;
  let lastDraw = 0;
  /** Code points of the line on screen now (0: nothing drawn yet). */
  let drawnLength = 0;
  let stopped = false;
  const draw = (resized = false): void => {
    if (!state) return;
    const now = Date.now();
    lastDraw = now;
    const rate = meter.rate(now);
    // One column short of the width: a line filling the last column leaves some terminals wrapping on the next write.
    const columns = (stream.columns && stream.columns > 0 ? stream.columns : DEFAULT_COLUMNS) - 1;
    const text = renderProgressLine({ label, ...state, ratePerSecond: rate, etaSeconds: etaOf(state.done, state.total, rate) }, columns);
    // A terminal made narrower than the line on screen either re-wraps that line onto two rows (tmux, VTE, iTerm2,
    // kitty) or cuts it (xterm, the Linux console), and `\r` reaches only the last row of a re-wrapped line. Going
    // up a row would erase earlier output on a terminal that cut it, so the line starts afresh below instead: one
    // stale line stays, whole, and nothing is drawn over a fragment.
    const fresh = resized && drawnLength > columns;
    drawnLength = [...text].length;
    stream.write(`${fresh ? '\n' : ''}\r${text}${CLEAR_TO_END}`);
  };
  const onResize = (): void => draw(true);
  stream.on('resize', onResize);
  return {
    update: (done, total, detail = '') => {
      if (stopped) return;
      const now = Date.now();
      meter.add(now, done, total);
      const first = state === undefined;
      state = { done, total, detail };
      if (first || now - lastDraw >= REDRAW_EVERY_MS || (knownTotal(total) && done >= total)) draw();
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      stream.off('resize', onResize);
      if (!state) return;
      draw();
      stream.write('\n');
    },
  };
}

function plainProgress(label: string, stream: ProgressStream): Progress {
  const meter = new RateMeter();
  let last = 0;
  let lastDone = -1;
  let lastDetail = '';
  return {
    update: (done, total, detail = '') => {
      const now = Date.now();
      meter.add(now, done, total);
      const finished = knownTotal(total) && done >= total;
      // A count standing still is written again when its detail changes: a batch waiting on the API ("paused
      // by the API until …") says so in a log too, instead of going silent.
      if ((now - last < PLAIN_EVERY_MS && !finished) || (done === lastDone && detail === lastDetail)) return;
      last = now;
      lastDone = done;
      lastDetail = detail;
      const rate = meter.rate(now);
      const counts = knownTotal(total) ? `${integer(done)}/${integer(total)} (${Math.min(100, Math.floor((100 * done) / total))}%)` : integer(done);
      const parts = [counts, formatRate(rate), formatEta(etaOf(done, total, rate)), oneLine(detail) || undefined];
      stream.write(`${label}: ${parts.filter((part) => part !== undefined).join(' ')}\n`);
    },
    stop: () => undefined,
  };
}
