// ESLint flat config. `npm run lint` runs it after `tsc -p tsconfig.test.json`, so it does not re-check what the compiler checks.
// TypeScript (src, jobs, test, bench) gets typescript-eslint's type-aware rules through tsconfig.test.json, the one project
// that includes all four folders. Plain JS (the console's browser scripts, Jest's global setup, config files) gets
// ESLint's own recommended rules with the right globals and no type information.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'build/', 'node_modules/', 'coverage/', 'reports/', 'test-artifacts/', 'fixtures/']),

  {
    name: 'bulk-unassign/typescript',
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // Not projectService: it would pick tsconfig.json, which leaves out test/ and bench/.
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The two rules this config exists for: a promise nobody awaits or catches, and a promise where a plain value is expected.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',

      // Async methods without await are deliberate: they implement async interfaces (signal handlers, fakes, prom-client collectors).
      'require-await': 'off',
      '@typescript-eslint/require-await': 'off',
      // `arr[i] as T` and `x!` on indexed access are deliberate (written for noUncheckedIndexedAccess); style, not correctness.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true, allowAny: false, allowNever: false },
      ],
      // `_` names and `const { dropped: _, ...rest } = x` are how the code says "deliberately unused".
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },

  {
    // Tests read JSON (HTTP bodies, CLI output, Redis hashes, page.evaluate results) as `any` on purpose,
    // and save a fake's methods to wrap or restore them (`const { expire } = batches`).
    name: 'bulk-unassign/tests',
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  {
    // The web console's pages: classic browser scripts, no modules, no build step.
    name: 'bulk-unassign/console-browser',
    files: ['src/console/public/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },

  {
    // Node-side plain JS: Jest global setup/teardown (ESM) and the repo's config files.
    name: 'bulk-unassign/node-js',
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ignores: ['src/console/public/**'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    name: 'bulk-unassign/commonjs',
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);
