// ESLint over everything TypeScript in the repository (src, tools, test, the configs), with
// typescript-eslint's type-checked rules: they read the same tsconfig.json as `npm run typecheck`.
// Formatting is Prettier's (.prettierrc.json); ESLint only adds the line bound Prettier cannot keep
// for strings and comments.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', '.tmp/', '**/testdata/', 'scripts/*.mjs', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
    },
  },
);
