/**
 * Writing CSV cells safely. Reports are opened in spreadsheets, and a cell that starts with = + - @ or a
 * control character can run as a formula there (CSV injection, OWASP): such cells get a leading apostrophe,
 * which spreadsheets hide and our own ingester strips again, so failed.csv stays re-uploadable.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function safeCell(value: string): string {
  const guarded = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded;
}

export function csvLine(cells: readonly string[]): string {
  return `${cells.map(safeCell).join(',')}\r\n`;
}
