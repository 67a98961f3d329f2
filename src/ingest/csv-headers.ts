/**
 * Which column is which. CSVs come from DoubleTick exports, CRMs and hand-made sheets, so a header is
 * matched case-, space-, dash-, dot- and underscore-insensitively against a list of common aliases.
 */

/** The columns the ingester understands. Any other column is kept as is (for failed.csv). */
export type Role = 'phone' | 'waba' | 'group' | 'agent';

const ALIASES: Record<Role, readonly string[]> = {
  phone: [
    'customerPhoneNumber',
    'customerPhone',
    'customerNumber',
    'customerMobile',
    'phone',
    'phoneNumber',
    'phoneNo',
    'mobile',
    'mobileNumber',
    'mobileNo',
    'msisdn',
    'whatsapp',
    'whatsappNumber',
    'contactNumber',
    'number',
  ],
  waba: ['wabaNumber', 'waba', 'wabaPhone', 'wabaPhoneNumber', 'businessNumber', 'businessPhone', 'businessPhoneNumber', 'integrationNumber'],
  group: ['groupId', 'group', 'waGroupId', 'whatsappGroupId', 'groupChatId'],
  /** The chat's agent before the unassign (optional): what `bulk-unassign restore` gives the chat back to. */
  agent: [
    'assignedUserNumber',
    'assignedUserPhone',
    'assignedUserPhoneNumber',
    'assignedAgent',
    'assignedAgentNumber',
    'assignedAgentPhone',
    'assignedTo',
    'assignee',
    'assigneeNumber',
    'assigneePhone',
    'agent',
    'agentNumber',
    'agentPhone',
    'agentPhoneNumber',
    'agentMobile',
  ],
};

/** The canonical name users see in messages, first alias of each role. */
export const CANONICAL: Record<Role, string> = { phone: 'customerPhoneNumber', waba: 'wabaNumber', group: 'groupId', agent: 'assignedUserNumber' };

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

/** The name (as the source's cells are keyed) of its agent column, if it has one. */
export function agentColumnOf(header: readonly string[]): string | undefined {
  const index = mapColumns(header).agent;
  return index === undefined ? undefined : header[index];
}

/**
 * An agent cell → the agent's digits (7–15, country code first), or undefined when the cell is empty or not a
 * number: such a chat is unassigned as usual, only not restorable. Spaces, dashes, dots, brackets, a leading `+`
 * and a spreadsheet's leading `'` are dropped.
 */
export function agentOfCell(cell: string | undefined): string | undefined {
  if (cell === undefined) return undefined;
  const digits = cell
    .trim()
    .replace(/^'/, '')
    .replace(/[\s().-]/g, '')
    .replace(/^\+/, '');
  return /^\d{7,15}$/.test(digits) ? digits : undefined;
}

/** Aliases of a role, for "expected one of ..." messages. */
export function aliasesOf(role: Role): readonly string[] {
  return ALIASES[role];
}

/**
 * Header names as keys for a row's cells: blanks become `column_<n>` and repeats get `_<k>` so no cell is
 * lost when the row is written back to failed.csv. A generated name never takes a name the header spells out
 * (`a,a,a_2` → `a`, `a_3`, `a_2`), so names that are already unique come back unchanged.
 */
export function uniqueHeaderNames(header: readonly string[]): string[] {
  const trimmed = header.map((h) => h.trim());
  const written = new Set(trimmed.filter((h) => h !== ''));
  const taken = new Set<string>();
  const fresh = (base: string): string => {
    for (let k = 2; ; k += 1) {
      const name = `${base}_${k}`;
      if (!taken.has(name) && !written.has(name)) return name;
    }
  };
  return trimmed.map((name, i) => {
    const base = name === '' ? `column_${i + 1}` : name;
    const unique = taken.has(base) || (name === '' && written.has(base)) ? fresh(base) : base;
    taken.add(unique);
    return unique;
  });
}
