/**
 * Which column is which. CSVs come from DoubleTick exports, CRMs and hand-made sheets, so a header is
 * matched case-, space-, dash-, dot- and underscore-insensitively against a list of common aliases.
 */

/** The columns the ingester understands. Any other column is kept as is (for failed.csv). */
export type Role = 'phone' | 'waba' | 'group';

const ALIASES: Record<Role, readonly string[]> = {
  phone: [
    'customerPhoneNumber', 'customerPhone', 'customerNumber', 'customerMobile', 'phone', 'phoneNumber', 'phoneNo',
    'mobile', 'mobileNumber', 'mobileNo', 'msisdn', 'whatsapp', 'whatsappNumber', 'contactNumber', 'number',
  ],
  waba: [
    'wabaNumber', 'waba', 'wabaPhone', 'wabaPhoneNumber', 'businessNumber', 'businessPhone', 'businessPhoneNumber',
    'integrationNumber',
  ],
  group: ['groupId', 'group', 'waGroupId', 'whatsappGroupId', 'groupChatId'],
};

/** The canonical name users see in messages, first alias of each role. */
export const CANONICAL: Record<Role, string> = { phone: 'customerPhoneNumber', waba: 'wabaNumber', group: 'groupId' };

/** "Customer Phone_Number" → "customerphonenumber". */
export function foldHeader(name: string): string {
  return name.toLowerCase().replace(/[\s_\-.]/g, '');
}

const ROLE_BY_FOLDED = new Map<string, Role>(
  (Object.entries(ALIASES) as [Role, readonly string[]][]).flatMap(([role, names]) => names.map((n) => [foldHeader(n), role] as const)),
);

/** Column index of each role found in a header row; the first matching column wins. */
export type ColumnMap = Partial<Record<Role, number>>;

export function mapColumns(header: readonly string[]): ColumnMap {
  const map: ColumnMap = {};
  header.forEach((name, i) => {
    const role = ROLE_BY_FOLDED.get(foldHeader(name));
    if (role !== undefined && map[role] === undefined) map[role] = i;
  });
  return map;
}

/** Aliases of a role, for "expected one of ..." messages. */
export function aliasesOf(role: Role): readonly string[] {
  return ALIASES[role];
}

/**
 * Header names as keys for a row's cells: blanks become `column_<n>` and repeats get `_<k>` so no cell is
 * lost when the row is written back to failed.csv.
 */
export function uniqueHeaderNames(header: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return header.map((raw, i) => {
    const base = raw.trim() === '' ? `column_${i + 1}` : raw.trim();
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}_${n}`;
  });
}
