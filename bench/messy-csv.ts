/**
 * A large, messy, deterministic CSV for the benchmark: the shapes real exports have (phone numbers written six
 * ways, quoted names with commas and quotes, multi-line notes, blank lines, a BOM), plus rows that cannot be a
 * chat and chats repeated later in the file. Alongside it, the chat keys of the valid distinct chats in file
 * order, so a baseline can enqueue exactly the jobs our ingest creates without parsing the CSV itself.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

const WABAS = ['919000000000', '919000000001', '919000000002'] as const;
const NAMES = ['Asha', 'Ravi', 'Meera', 'Kiran', 'Dev', '"Anil, Jr."', '"Priya ""PJ"""', 'Ōmura Ken'];
/** Cells that are not a phone number, each for a different reason. */
const BAD_PHONES = ['not-a-number', '12345', '', '+91 98123 4567x', '9.19812E+11', '+91 98765'];

/** The n-th distinct customer number (n < 89,999,999: 7919 is prime, so the 8 digits never repeat). */
export function benchPhone(n: number): string {
  return `9198${String(10_000_000 + ((n * 7919) % 89_999_999)).padStart(8, '0')}`;
}

function wabaOf(n: number): string {
  return WABAS[n % WABAS.length] as string;
}

/** The ways people write one number (all normalise to the same digits). */
function styled(phone: string, style: number): string {
  switch (style % 6) {
    case 0:
      return phone;
    case 1:
      return `+${phone}`;
    case 2:
      return `"+${phone.slice(0, 2)} ${phone.slice(2, 7)} ${phone.slice(7)}"`;
    case 3:
      return `00${phone.slice(0, 2)}-${phone.slice(2, 7)}-${phone.slice(7)}`;
    case 4:
      return `"(+${phone.slice(0, 2)}) ${phone.slice(2, 7)}.${phone.slice(7)}"`;
    default:
      return `+${phone.slice(0, 2)}-${phone.slice(2)}`;
  }
}

export interface MessyCsv {
  readonly file: string;
  /** One chat key per line (`p:<phone>@<waba>`), the valid distinct chats in file order. */
  readonly keysFile: string;
  readonly rows: number;
  readonly valid: number;
  readonly rejected: number;
  readonly duplicates: number;
}

async function writeAll(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/**
 * Writes `rows` data rows: every 200th row cannot be a chat, every 100th (from row 1000 on) repeats an earlier
 * chat in another format, every 1000th has a multi-line quoted note, every 5000th is followed by a blank line.
 */
export async function writeMessyCsv(file: string, keysFile: string, rows: number): Promise<MessyCsv> {
  const out = createWriteStream(file);
  const keys = createWriteStream(keysFile);
  let valid = 0;
  let rejected = 0;
  let duplicates = 0;
  let csv = '\ufeffCustomer Phone,WABA Number,Name,Notes\r\n';
  let keyText = '';
  for (let i = 0; i < rows; i += 1) {
    const name = NAMES[i % NAMES.length] as string;
    const note = i % 1000 === 500 ? '"called twice,\r\nno answer"' : `row ${i}`;
    if (i % 200 === 199) {
      rejected += 1;
      csv += `${BAD_PHONES[((i / 200) % BAD_PHONES.length) | 0]},${WABAS[0]},${name},${note}\r\n`;
    } else if (i >= 1000 && i % 100 === 37) {
      duplicates += 1;
      const n = (i * 31) % valid; // an earlier chat, written differently
      csv += `${styled(benchPhone(n), i + 3)},${wabaOf(n)},${name},dup ${note}\r\n`;
    } else {
      const n = valid;
      valid += 1;
      csv += `${styled(benchPhone(n), i)},${wabaOf(n)},${name},${note}\r\n`;
      keyText += `p:${benchPhone(n)}@${wabaOf(n)}\n`;
    }
    if (i % 5000 === 4999) csv += '\r\n';
    if (csv.length > 1 << 16) {
      await Promise.all([writeAll(out, csv), writeAll(keys, keyText)]);
      csv = '';
      keyText = '';
    }
  }
  await Promise.all([writeAll(out, csv), writeAll(keys, keyText)]);
  out.end();
  keys.end();
  await Promise.all([once(out, 'finish'), once(keys, 'finish')]);
  return { file, keysFile, rows, valid, rejected, duplicates };
}
