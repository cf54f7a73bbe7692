// ESLint over everything TypeScript in the repository (src, tools, test, the configs), with
// typescript-eslint's type-checked rules: they read the same tsconfig.json as `npm run typecheck`.
// Formatting is Prettier's (.prettierrc.json); ESLint adds the line bound Prettier cannot keep for
// strings and comments.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', '.tmp/', '**/testdata/', 'scripts/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
      // A timer or listener set up before the first assignment reads the variable: `const` cannot.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `async` without `await` is how a function that throws keeps to a promise-returning contract
      // (credential providers, the lookups' and the fakes' interfaces): the throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // Passing on what a catch or a rejection handed us, whatever it is, is not inventing a non-Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      // expect.stringContaining() and the other asymmetric matchers are typed `any` by vitest.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // gRPC status codes come off the wire as plain numbers and are compared with grpc-js's enum.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
    },
  },
);
