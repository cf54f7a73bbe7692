// The Go-template subset the chart is rendered with: each row is Go/Helm's documented behaviour.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { goFloat, TemplateEngine, TemplateError, toYaml } from './go-template.js';
import { CHART_DIR } from './helm.js';

function render(src: string, data: unknown = {}): string {
  const e = new TemplateEngine();
  e.add('t', src);
  return e.render('t', data);
}

describe('go-template rendering', () => {
  const V = { Values: { a: 'x', n: 5, big: 1000000, t: true, f: false, empty: '', nul: null, list: ['p', 'q'], m: { k2: 2, k1: 1 }, nested: { s: 'v' } } };
  it.each([
    ['text only', 'plain', 'plain'],
    ['field', '{{ .Values.a }}', 'x'],
    ['missing key prints nothing (missingkey=zero, <no value> removed)', '[{{ .Values.missing }}]', '[]'],
    ['explicit null prints <nil>', '{{ .Values.nul }}', '<nil>'],
    ['float64 integer', '{{ .Values.n }}', '5'],
    ['float64 1e6 prints in exponent form (Helm quirk)', '{{ .Values.big }}', '1e+06'],
    ['left trim', 'a  \n {{- .Values.a }}', 'ax'],
    ['right trim', '{{ .Values.a -}}  \n b', 'xb'],
    ['comment with trims', 'a\n{{- /* note */ -}}\nb', 'ab'],
    ['if/else if/else', '{{ if .Values.f }}1{{ else if .Values.empty }}2{{ else }}3{{ end }}', '3'],
    ['else if taken', '{{ if .Values.f }}1{{ else if .Values.t }}2{{ else }}3{{ end }}', '2'],
    ['empty map is false', '{{ if .Values.nothing }}y{{ else }}n{{ end }}{{ if dict }}y{{ else }}n{{ end }}', 'nn'],
    ['with sets dot', '{{ with .Values.nested }}{{ .s }}{{ end }}', 'v'],
    ['with else', '{{ with .Values.empty }}y{{ else }}n{{ end }}', 'n'],
    ['range list', '{{ range .Values.list }}<{{ . }}>{{ end }}', '<p><q>'],
    ['range map sorted by key with vars', '{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}', 'k1=1;k2=2;'],
    ['range else', '{{ range .Values.none }}x{{ else }}none{{ end }}', 'none'],
    ['$ is root inside range', '{{ range .Values.list }}{{ $.Values.a }}{{ end }}', 'xx'],
    ['variables and assignment', '{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}', 'b'],
    ['default', '{{ default "d" .Values.empty }}|{{ default "d" .Values.a }}|{{ .Values.empty | default "p" }}', 'd|x|p'],
    ['quote', '{{ .Values.a | quote }} {{ quote .Values.n }}', '"x" "5"'],
    ['trunc + trimSuffix', '{{ "abcdef-" | trunc 4 }}|{{ "abc-" | trimSuffix "-" }}|{{ trunc 7 "abcdef-" | trimSuffix "-" }}', 'abcd|abc|abcdef'],
    ['printf', '{{ printf "%s-%s:%d %q %v%%" "a" "b" 3 "q" .Values.t }}', 'a-b:3 "q" true%'],
    ['contains / replace', '{{ contains "ab" "xaby" }} {{ "1+2" | replace "+" "_" }}', 'true 1_2'],
    ['eq with several candidates, ne, not', '{{ eq .Values.a "y" "x" }} {{ ne 1 2 }} {{ not .Values.t }}', 'true true false'],
    ['and/or return the deciding operand', '{{ and 1 "s" }} {{ or "" 0 "z" }} {{ and .Values.f .Values.missing.field }}', 's z false'],
    ['index with a hyphenated key', '{{ index .Values "m" "k1" }}', '1'],
    ['has / list', '{{ has "q" .Values.list }} {{ has "z" (list "a") }}', 'true false'],
    ['parenthesised pipeline', '{{ (default "a" .Values.empty) | upper }}', 'A'],
    ['toYaml + nindent', 'x:{{ toYaml .Values.m | nindent 2 }}', 'x:\n  k1: 1\n  k2: 2'],
    ['indent pads every line', '{{ "a\\nb" | indent 2 }}', '  a\n  b'],
  ])('%s', (_name, src, want) => {
    expect(render(src, V)).toBe(want);
  });

  it('define + include + template share defines across files, with their own dot', () => {
    const e = new TemplateEngine();
    e.add('_h.tpl', '{{- define "n" -}}{{ .x }}{{- end }}');
    e.add('main', '{{ include "n" (dict "x" "A") }}{{ template "n" .v }}');
    expect(e.render('main', { v: { x: 'B' } })).toBe('AB');
  });

  it.each([
    ['field of nil', '{{ .Values.missing.field }}', /nil pointer evaluating interface \{\}\.field/],
    ['required', '{{ required "image.repository is required" .Values.empty }}', /image.repository is required/],
    ['fail', '{{ fail "stop here" }}', /stop here/],
    ['unknown function', '{{ lookup "v1" "Pod" "" "" }}', /function "lookup" not defined/],
    ['unsupported keyword', '{{ block "x" . }}{{ end }}', /outside the supported subset/],
    ['unclosed if', '{{ if true }}x', /if without end/],
    ['argument to a non-function', '{{ .Values.a "x" }}', /can't give argument to non-function/],
  ])('refuses: %s', (_name, src, want) => {
    expect(() => render(src, { Values: { empty: '' } })).toThrow(TemplateError);
    expect(() => render(src, { Values: { empty: '' } })).toThrow(want);
  });

  it.each([
    [5, '5'],
    [0.5, '0.5'],
    [123456, '123456'],
    [1234567, '1.234567e+06'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-2, '-2'],
  ])('goFloat(%d) = %s, as Go prints a float64', (n, want) => {
    expect(goFloat(n)).toBe(want);
  });

  it('toYaml sorts keys, quotes YAML 1.1 booleans and drops the trailing newline', () => {
    expect(toYaml({ b: 'yes', a: ['x'], c: {} })).toBe('a:\n- x\nb: "yes"\nc: {}');
    expect(toYaml(null)).toBe('null');
  });

  it('computes ASCP\'s truncated full name with our _helpers.tpl (ascp-behaviour.md §12.1)', () => {
    const e = new TemplateEngine();
    e.add('_helpers.tpl', readFileSync(join(CHART_DIR, 'templates/_helpers.tpl'), 'utf8'));
    e.add('t', '{{ include "provider.fullname" . }}');
    const got = e.render('t', {
      Values: { nameOverride: '', fullnameOverride: '' },
      Chart: { Name: 'secrets-store-csi-driver-provider-aws' },
      Release: { Name: 'csi-secrets-store-provider-aws' },
    });
    expect(got).toBe('csi-secrets-store-provider-aws-secrets-store-csi-driver-provide');
    expect(got).toHaveLength(63);
  });
});
