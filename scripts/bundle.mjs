// The provider server as one bundle (run by `npm run build`, after tsc): dist/main.js and every
// runtime dependency it loads → dist/bundle/main.js, which the image runs (`node dist/bundle/main.js`).
//
// Why: at start-up Node resolves, reads and compiles ~200 files (our modules and the packages
// they load); one bundle of the same code starts on about two thirds of the CPU, and under the
// chart's 50m CPU limit start-up wall time is start-up CPU × 20 (see docs/benchmarks.md,
// "Start-up in the box").
//
// What stays lazy: every dynamic `import()` (the mount pipeline, the AWS SDK clients, yaml for a
// kubeconfig) becomes its own chunk beside main.js, loaded when the code asks for it, as before.
//
// Two things a plain esbuild bundle gets wrong, handled here:
// - A CommonJS package loaded with `await import('pkg')` gets named exports from Node (its
//   cjs-module-lexer), but only `default` from a split esbuild bundle, so
//   `const { STSClient } = await import('@aws-sdk/client-sts')` would read undefined. The plugin
//   below replaces each dynamic import of a package with a small module re-exporting, by name,
//   exactly the exports Node itself gives that package (asked from Node at build time).
// - Bundled CommonJS calls `require('node:…')`, which an ES module does not have: every output file
//   starts with a `require` made by createRequire (Node's own, for built-in modules only; all
//   packages are in the bundle).
//
// Paths: version.ts looks for package.json upwards from its file, and metrics.ts reads
// ../../package.json, so the bundle sits two directories below the package root, as dist/*/ does.
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');
const identifier = /^[A-Za-z_$][\w$]*$/;

/** `await import('pkg')` of a bundled package → the named exports Node gives `pkg`. */
const nodeNamedExports = {
  name: 'node-named-exports',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.path.startsWith('node:')) return undefined;
      const resolved = await b.resolve(args.path, {
        kind: 'import-statement',
        resolveDir: args.resolveDir,
        importer: args.importer,
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      if (resolved.external) return undefined;
      return { path: resolved.path, namespace: 'node-named-exports' };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-named-exports' }, async (args) => {
      const ns = await import(pathToFileURL(args.path).href);
      const names = Object.keys(ns).filter((n) => n !== 'default' && identifier.test(n));
      const from = JSON.stringify(args.path);
      const lines = [`export { ${names.join(', ')} } from ${from};`];
      if ('default' in ns) lines.push(`export { default } from ${from};`);
      return { contents: lines.join('\n') + '\n', resolveDir: path.dirname(args.path), loader: 'js' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  // The JMESPath worker is started by file name (a worker thread's entry point), so it is an entry
  // point of its own: dist/bundle/spc/jmes-eval.js, which spc/jmes.ts looks for beside its chunk.
  entryPoints: ['dist/main.js', 'dist/spc/jmes-eval.js'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // Resolve packages as Node does: no bundler-only "module" entry points (the AWS SDK's dist-es
  // files cannot be loaded by Node, and mixing them with the dist-cjs files Node loads would
  // duplicate modules). Node's own conditions (node, import/require, default) still apply.
  conditions: [],
  mainFields: ['main'],
  // Not minified: stack traces and the CPU profile keep our function names and lines readable.
  minify: false,
  sourcemap: false,
  legalComments: 'eof',
  banner: {
    js:
      "import { createRequire as __bundleCreateRequire } from 'node:module'; " +
      'const require = __bundleCreateRequire(import.meta.url);',
  },
  plugins: [nodeNamedExports],
  logLevel: 'warning',
  metafile: true,
});

// node_modules shipped each package's licence file; the bundle carries them in one file instead.
/** The package a bundled file belongs to: the nearest package.json above it with a name. */
function packageOf(file) {
  for (let dir = path.dirname(path.resolve(root, file)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (!existsSync(pj)) continue;
    const meta = JSON.parse(readFileSync(pj, 'utf8'));
    if (typeof meta.name === 'string' && typeof meta.version === 'string')
      return { dir, name: meta.name, version: meta.version, license: meta.license };
  }
  return undefined;
}
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  // Skip the plugin's re-export modules ("node-named-exports:<path>"): their files are inputs too.
  if (/^[\w-]+:/.test(input) || !input.split(/[\\/]/).includes('node_modules')) continue;
  const p = packageOf(input);
  if (p !== undefined) packages.set(`${p.name}@${p.version}`, p);
}
const notices = [...packages.values()]
  .sort((a, b) => a.name.localeCompare(b.name))
  .map((p) => {
    const file = readdirSync(p.dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text =
      file === undefined
        ? `(no licence file in the package; package.json says ${JSON.stringify(p.license ?? 'nothing')})`
        : readFileSync(path.join(p.dir, file), 'utf8').trim();
    return `${p.name} ${p.version} (${typeof p.license === 'string' ? p.license : 'see below'})\n\n${text}\n`;
  });
await writeFile(
  path.join(outdir, 'THIRD-PARTY-LICENSES.txt'),
  `Packages bundled into this directory's JavaScript files, with their licences.\n\n` +
    notices.join(`\n${'-'.repeat(80)}\n\n`),
);

const files = Object.keys(result.metafile.outputs);
const main = result.metafile.outputs[path.relative(root, path.join(outdir, 'main.js'))];
const mainKiB = Math.round((main?.bytes ?? 0) / 1024);
process.stdout.write(
  `bundle: ${files.length} files in ${path.relative(root, outdir)}/ ` +
    `(main.js ${mainKiB} KiB), ${packages.size} packages\n`,
);
