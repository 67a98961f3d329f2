/** src/cli/progress.ts: the terminal line fits any width without cutting a number or word, a sane ETA, resize, stop. */
import { EventEmitter } from 'node:events';

import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';

import { formatEta, makeProgress, type ProgressLine, renderProgressLine } from '../../src/cli/progress.js';

const WIDTHS = [0, 5, 12, 20, 30, 40, 60, 80, 100, 120, 200];
const HUGE = Number.MAX_SAFE_INTEGER;
/** Longer than the rate's 10 s window. */
const RATE_WINDOW_PLUS = 11_000;

const LINES: readonly ProgressLine[] = [
  {
    label: 'batch 01J9ZQ4K7M3N8P2R5T6V',
    done: 163,
    total: 1000,
    ratePerSecond: 27.4,
    etaSeconds: 30.6,
    detail: '163 ok, 2 failed, 14×429, API paused until 12:03:04',
  },
  {
    label: 'reading a-very-long-file-name-exported-from-the-crm-2024-06-30-final-final.csv',
    done: 4821,
    total: undefined,
    ratePerSecond: 1200,
    detail: 'reading',
  },
  {
    label: 'batch 01J9ZQ4K7M3N8P2R5T6V',
    done: HUGE - 12345,
    total: HUGE,
    ratePerSecond: 98765.4,
    etaSeconds: 0.125,
    detail: `${HUGE - 12345} ok, 123456789 failed, 987654321×429`,
  },
  { label: 'reading demo.csv', done: 0, total: 500, ratePerSecond: 0, etaSeconds: undefined, detail: 'enqueueing' },
  { label: 'batch x', done: 500, total: 500, ratePerSecond: 50, etaSeconds: 0, detail: '498 ok, 2 failed' },
  { label: 'batch with many words in its label that go on and on', done: 7, total: 9, ratePerSecond: 0.5, etaSeconds: 4, detail: 'word '.repeat(60) },
  { label: 'batch\nwith a newline', done: 1, total: 3, detail: 'tab\there' },
];

/** The terminal's clear-to-end-of-line sequence, which ends each redraw. */
const CLEAR_TO_END = '\x1b[K';

const codePoints = (text: string): number => [...text].length;

/** Every number (run of digits) of `text`: each must be a whole number of the input, not a piece of one. */
const numbersIn = (text: string): string[] => text.match(/\d+/g) ?? [];

/** The numbers the input can show: counts, detail and label numbers, percentage, rate and ETA parts. */
function allowedNumbers(line: ProgressLine): Set<string> {
  const allowed = new Set<string>([...numbersIn(line.label), ...numbersIn(line.detail ?? ''), String(line.done), String(line.total ?? '')]);
  for (let n = 0; n <= 100; n += 1) allowed.add(String(n)); // percentages, ETA minutes/seconds, 1-decimal rates
  for (let n = 0; n <= 100; n += 1) allowed.add(String(n).padStart(2, '0'));
  if (line.ratePerSecond !== undefined)
    for (const n of numbersIn(line.ratePerSecond >= 100 ? String(Math.round(line.ratePerSecond)) : line.ratePerSecond.toFixed(1))) allowed.add(n);
  return allowed;
}

describe('renderProgressLine', () => {
  it.each(LINES.flatMap((line, index) => WIDTHS.map((width) => [index, width, line] as const)))(
    'line %i at %i columns: fits, no cut number or word, no LL/NaN/Infinity',
    (_index, width, line) => {
      const text = renderProgressLine(line, width);
      expect(codePoints(text)).toBeLessThanOrEqual(width);
      expect(text).not.toMatch(/LL|NaN|Infinity|undefined|(^|[\s|])-\d/);
      expect(/[\n\r\t]/.test(text) || text.includes(CLEAR_TO_END.slice(0, 1))).toBe(false);
      const allowed = allowedNumbers(line);
      for (const n of numbersIn(text)) expect(allowed.has(n)).toBe(true);
      // Numbers and words of the label and detail are only ever dropped whole: no shown word is a strict prefix cut.
      const words = new Set(`${line.label} ${line.detail ?? ''}`.split(/\s+/).map((w) => w.replace(/[,;:]$/, '')));
      for (const word of text.replace(/…/g, ' ').split(/[\s|]+/)) {
        if (
          word === '' ||
          /^\[[#-]+\]$/.test(word) ||
          /^\d+(\/\d+)?%?$/.test(word) ||
          /^\d+(\.\d)?\/s$/.test(word) ||
          word === 'ETA' ||
          /^\d+[hms](\d+[ms])?$/.test(word)
        )
          continue;
        expect(words.has(word.replace(/[,;:]$/, ''))).toBe(true);
      }
    },
  );

  it('shows everything when there is room: label, bar, percent, counts, rate, ETA, detail', () => {
    const text = renderProgressLine({ label: 'batch b1', done: 420, total: 1000, ratePerSecond: 12.5, etaSeconds: 46.4, detail: '418 ok, 2 failed' }, 120);
    expect(text).toMatch(/^batch b1 \[#{12}-{18}\] 42% \| 420\/1000 \| 12\.5\/s \| ETA 47s \| 418 ok, 2 failed$/);
  });

  it('gives things up in order: bar, then rate, then ETA, then the detail (cut at a word), then the percentage, then the label', () => {
    const line: ProgressLine = { label: 'batch b1', done: 420, total: 1000, ratePerSecond: 12.5, etaSeconds: 46.4, detail: '418 ok, 2 failed, 7×429' };
    const at = (width: number): string => renderProgressLine(line, width);
    expect(at(90)).toBe('batch b1 [#######------------] 42% | 420/1000 | 12.5/s | ETA 47s | 418 ok, 2 failed, 7×429');
    expect(at(81)).toBe('batch b1 [####------] 42% | 420/1000 | 12.5/s | ETA 47s | 418 ok, 2 failed, 7×429');
    expect(at(80)).toBe('batch b1 42% | 420/1000 | 12.5/s | ETA 47s | 418 ok, 2 failed, 7×429');
    expect(at(60)).toBe('batch b1 42% | 420/1000 | ETA 47s | 418 ok, 2 failed, 7×429');
    expect(at(50)).toBe('batch b1 42% | 420/1000 | 418 ok, 2 failed, 7×429');
    expect(at(45)).toBe('batch b1 42% | 420/1000 | 418 ok, 2 failed…');
    expect(at(40)).toBe('batch b1 42% | 420/1000 | 418 ok…'); // not "418 ok, 2…": a bare number is not left dangling
    expect(at(30)).toBe('batch b1 42% | 420/1000');
    expect(at(22)).toBe('batch b1 | 420/1000');
    expect(at(18)).toBe('batch… | 420/1000');
    expect(at(10)).toBe('420/1000');
    expect(at(7)).toBe('');
  });

  it('shows no percentage, bar or ETA while the total is unknown, and no ETA when the rate is 0', () => {
    expect(renderProgressLine({ label: 'reading demo.csv', done: 4821, ratePerSecond: 1200, etaSeconds: 5, detail: 'reading' }, 120)).toBe(
      'reading demo.csv | 4821 | 1200/s | reading',
    );
    expect(renderProgressLine({ label: 'b', done: 0, total: 500, ratePerSecond: 0, etaSeconds: 3, detail: '' }, 120)).not.toContain('ETA');
    expect(renderProgressLine({ label: 'b', done: 500, total: 500, ratePerSecond: 10, etaSeconds: 0 }, 120)).not.toContain('ETA');
    for (const eta of [Number.NaN, Number.POSITIVE_INFINITY, -5])
      expect(renderProgressLine({ label: 'b', done: 1, total: 5, ratePerSecond: 1, etaSeconds: eta }, 120)).not.toContain('ETA');
  });
});

describe('formatEta', () => {
  it.each([
    [0, 'ETA 0s'],
    [0.2, 'ETA 1s'],
    [42, 'ETA 42s'],
    [59.5, 'ETA 1m00s'],
    [190, 'ETA 3m10s'],
    [3599, 'ETA 59m59s'],
    [3600, 'ETA 1h00m'],
    [3900, 'ETA 1h05m'],
    [3901, 'ETA 1h06m'],
    [360_000, 'ETA 100h00m'],
  ])('%p s → %p', (seconds, text) => expect(formatEta(seconds)).toBe(text));

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, undefined])('%p → none', (seconds) =>
    expect(formatEta(seconds)).toBeUndefined(),
  );
});

/** A stand-in terminal: what a progress display needs of process.stderr, recording every write. */
class FakeTty extends EventEmitter {
  readonly isTTY = true;
  writes: string[] = [];
  constructor(public columns: number) {
    super();
  }
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
  /** The visible text of the last write (without `\r` and the clear-to-end-of-line). */
  lastLine(): string {
    const last = this.writes.filter((w) => w !== '\n').at(-1) ?? '';
    return last.replace(/^\n?\r/, '').slice(0, last.endsWith(CLEAR_TO_END) ? -CLEAR_TO_END.length : undefined);
  }
}

describe('makeProgress on a terminal', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const detail = '163 ok, 2 failed, 14×429, API paused until 12:03:04';

  it('draws with \\r and clear-to-end-of-line, within the width (one column spare), and redraws at the new width on resize', () => {
    const tty = new FakeTty(120);
    const progress = makeProgress('batch 01J9ZQ4K7M3N8P2R5T6V', tty);
    progress.update(0, 1000, detail);
    jest.advanceTimersByTime(2000);
    progress.update(163, 1000, detail);
    expect(tty.writes.at(-1)?.startsWith('\r')).toBe(true);
    expect(tty.writes.at(-1)?.endsWith(CLEAR_TO_END)).toBe(true);
    expect(codePoints(tty.lastLine())).toBeLessThan(120);
    expect(tty.lastLine()).toContain('ETA 11s'); // 837 left at 81.5/s

    const before = tty.writes.length;
    tty.columns = 60;
    tty.emit('resize');
    expect(tty.writes.length).toBe(before + 1);
    expect(codePoints(tty.lastLine())).toBeLessThan(60);
    expect(tty.lastLine()).toMatch(/163\/1000/);

    tty.columns = 40;
    tty.emit('resize');
    expect(codePoints(tty.lastLine())).toBeLessThan(40);
  });

  it('a resize narrower than the line on screen starts the line afresh below it; a wider one redraws in place', () => {
    const tty = new FakeTty(200);
    const progress = makeProgress('batch 01J9ZQ4K7M3N8P2R5T6V', tty);
    progress.update(0, 1000, detail);
    jest.advanceTimersByTime(2000);
    progress.update(163, 1000, detail);
    const wide = codePoints(tty.lastLine());
    expect(wide).toBeGreaterThan(60);

    tty.columns = 60;
    tty.emit('resize');
    // The old line may now be wrapped over two rows, and \r would reach only the second: a new line instead.
    expect(tty.writes.at(-1)?.startsWith('\n\r')).toBe(true);
    expect(codePoints(tty.lastLine())).toBeLessThan(60);

    tty.columns = 200;
    tty.emit('resize');
    expect(tty.writes.at(-1)?.startsWith('\r')).toBe(true);
    // Same width again, a line that fits: in place.
    tty.emit('resize');
    expect(tty.writes.at(-1)?.startsWith('\r')).toBe(true);
  });

  it('stop() draws the final state, ends the line and stops listening to resize; later calls do nothing', () => {
    const tty = new FakeTty(80);
    const progress = makeProgress('batch b', tty);
    expect(tty.listenerCount('resize')).toBe(1);
    progress.update(1, 10, 'x');
    progress.update(2, 10, 'y'); // within the redraw interval: not drawn yet …
    progress.stop(); // … but stop() shows it
    expect(tty.writes.at(-1)).toBe('\n');
    expect(tty.lastLine()).toContain('2/10');
    expect(tty.listenerCount('resize')).toBe(0);
    const count = tty.writes.length;
    tty.emit('resize');
    progress.update(3, 10);
    progress.stop();
    expect(tty.writes.length).toBe(count);
  });

  it('stop() without any update writes nothing; an unknown width counts as 80', () => {
    const silent = new FakeTty(80);
    makeProgress('batch b', silent).stop();
    expect(silent.writes).toEqual([]);

    const unknown = new FakeTty(0);
    const progress = makeProgress('batch b', unknown);
    progress.update(5, 10, detail.repeat(5));
    expect(codePoints(unknown.lastLine())).toBeLessThan(80);
    expect(codePoints(unknown.lastLine())).toBeGreaterThan(60);
  });

  it('has no rate or ETA before a second of samples, and none while the count stands still', () => {
    const tty = new FakeTty(200);
    const progress = makeProgress('batch b', tty);
    progress.update(10, 100);
    expect(tty.lastLine()).not.toMatch(/\/s|ETA/);
    jest.advanceTimersByTime(RATE_WINDOW_PLUS);
    progress.update(10, 100);
    expect(tty.lastLine()).not.toMatch(/\/s|ETA/);
  });

  it('starts the rate over when the count goes back (reading rows, then enqueueing)', () => {
    const tty = new FakeTty(200);
    const progress = makeProgress('reading demo.csv', tty);
    progress.update(0, undefined, 'reading');
    jest.advanceTimersByTime(1000);
    progress.update(5000, undefined, 'reading');
    expect(tty.lastLine()).toBe('reading demo.csv | 5000 | 5000/s | reading');
    jest.advanceTimersByTime(100);
    progress.update(0, 5000, 'enqueueing');
    expect(tty.lastLine()).toBe('reading demo.csv [------------------------------] 0% | 0/5000 | enqueueing');
    jest.advanceTimersByTime(2000);
    progress.update(1000, 5000, 'enqueueing');
    expect(tty.lastLine()).toContain('| 500/s | ETA 8s |');
  });
});

describe('makeProgress elsewhere', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes plain lines every few seconds (and the last one), never a control sequence, and ignores resize', () => {
    const out = new FakeTty(80);
    Object.defineProperty(out, 'isTTY', { value: false });
    const progress = makeProgress('batch b', out);
    expect(out.listenerCount('resize')).toBe(0);
    for (let done = 0; done <= 100; done += 1) {
      progress.update(done, 100, `${done} ok, 0 failed`);
      jest.advanceTimersByTime(200);
    }
    progress.stop();
    expect(out.writes.length).toBeGreaterThan(2);
    expect(out.writes.length).toBeLessThan(10);
    for (const line of out.writes) expect(line).toMatch(/^batch b: \d+\/100 \(\d+%\)( \d+\.\d\/s)?( ETA \d+s)?( \d+ ok, 0 failed)?\n$/);
    expect(out.writes.at(-1)).toBe('batch b: 100/100 (100%) 5.0/s 100 ok, 0 failed\n');
  });

  it('writes a count that stands still again when its detail changes (a pause by the API), at most every few seconds', () => {
    const out = new FakeTty(80);
    Object.defineProperty(out, 'isTTY', { value: false });
    const progress = makeProgress('batch b', out);
    progress.update(3, 10, '3 ok, 0 failed');
    for (let i = 0; i < 60; i += 1) {
      jest.advanceTimersByTime(250);
      progress.update(3, 10, `3 ok, 0 failed, 1×429, paused by the API until 14:03:0${i < 30 ? 7 : 9}`);
    }
    // The first line, the pause when it began, and once more when the API moved its end; nothing in between.
    expect(out.writes.map((line) => line.replace(/ \d+\.\d\/s| ETA \S+/g, ''))).toEqual([
      'batch b: 3/10 (30%) 3 ok, 0 failed\n',
      'batch b: 3/10 (30%) 3 ok, 0 failed, 1×429, paused by the API until 14:03:07\n',
      'batch b: 3/10 (30%) 3 ok, 0 failed, 1×429, paused by the API until 14:03:09\n',
    ]);
    progress.update(3, 10, '3 ok, 0 failed, 1×429, paused by the API until 14:03:09');
    expect(out.writes).toHaveLength(3);
  });

  it('quiet writes nothing', () => {
    const out = new FakeTty(80);
    const progress = makeProgress('batch b', out, true);
    progress.update(1, 2, 'x');
    progress.stop();
    expect(out.writes).toEqual([]);
  });
});
