/**
 * The hand-written codec against protobufjs loading proto/service.proto and proto/health.proto:
 * the .proto files are the contract, field for field (docs/behaviour.md, "Transport"). Both directions, random
 * messages (fast-check), unknown fields skipped, negative int32.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  decodeMountRequest,
  decodeMountResponse,
  encodeMountRequest,
  encodeMountResponse,
  healthCheckRequest,
  healthCheckResponse,
  versionRequest,
  versionResponse,
  type MountResponseMessage,
} from './codec.js';

const root = protobuf.loadSync([
  fileURLToPath(new URL('../../proto/service.proto', import.meta.url)),
  fileURLToPath(new URL('../../proto/health.proto', import.meta.url)),
]);
const T = (name: string): protobuf.Type => root.lookupType(name);
const plain = (t: protobuf.Type, b: Uint8Array): Record<string, unknown> =>
  t.toObject(t.decode(b), {
    defaults: true,
    arrays: true,
    bytes: Buffer as unknown as StringConstructor,
    enums: String,
  });

const str = fc.string({ unit: 'binary', maxLength: 40 });
const objectVersion = fc.record({ id: str, version: str });
const mountRequest = fc.record({
  attributes: str,
  secrets: str,
  target_path: str,
  permission: str,
  current_object_version: fc.array(objectVersion, { maxLength: 5 }),
});
const file = fc.record({
  path: str,
  mode: fc.integer({ min: -2147483648, max: 2147483647 }),
  contents: fc.uint8Array({ maxLength: 64 }),
});
const mountResponse = fc.record({
  object_version: fc.array(objectVersion, { maxLength: 5 }),
  error: fc.option(fc.record({ code: str }), { nil: null }),
  files: fc.array(file, { maxLength: 5 }),
});

function camel(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase()), v]),
  );
}

describe('codec ≡ protobufjs on proto/service.proto', () => {
  it('MountRequest: ours → protobufjs and protobufjs → ours', () => {
    const t = T('v1alpha1.MountRequest');
    fc.assert(
      fc.property(mountRequest, (m) => {
        const theirs = plain(t, encodeMountRequest(m));
        expect(theirs).toEqual({ ...camel(m), currentObjectVersion: m.current_object_version });
        const bytes = t.encode(t.fromObject(camel(m))).finish();
        expect(decodeMountRequest(Buffer.from(bytes))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('MountResponse: files with modes (negative int32 too) and bytes, the error message', () => {
    const t = T('v1alpha1.MountResponse');
    fc.assert(
      fc.property(mountResponse, (m: MountResponseMessage) => {
        const back = t.decode(encodeMountResponse(m)) as unknown as {
          objectVersion: { id: string; version: string }[];
          error?: { code: string } | null;
          files: { path: string; mode: number; contents: Uint8Array }[];
        };
        expect(back.objectVersion.map((v) => ({ id: v.id, version: v.version }))).toEqual(m.object_version);
        expect(back.files.map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) }))).toEqual(
          m.files.map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })),
        );
        expect(back.error?.code ?? null).toEqual(m.error ? m.error.code : null);
        const bytes = t
          .encode(t.fromObject({ objectVersion: m.object_version, error: m.error ?? undefined, files: m.files }))
          .finish();
        const ours = decodeMountResponse(Buffer.from(bytes));
        expect(ours.object_version).toEqual(m.object_version);
        expect(ours.files.map((f) => ({ ...f, contents: Buffer.from(f.contents) }))).toEqual(
          m.files.map((f) => ({ ...f, contents: Buffer.from(f.contents) })),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('Version request and response', () => {
    const req = T('v1alpha1.VersionRequest');
    const res = T('v1alpha1.VersionResponse');
    expect(plain(req, versionRequest.encode({ version: 'v1alpha1' }))).toEqual({ version: 'v1alpha1' });
    const bytes = res
      .encode(res.fromObject({ version: 'v1alpha1', runtimeName: 'x', runtimeVersion: '1.2.3' }))
      .finish();
    expect(versionResponse.decode(Buffer.from(bytes))).toEqual({
      version: 'v1alpha1',
      runtime_name: 'x',
      runtime_version: '1.2.3',
    });
  });

  it('skips fields it does not know (a newer driver may add some)', () => {
    const t = T('v1alpha1.MountRequest');
    const known = Buffer.from(t.encode(t.fromObject({ attributes: '{}', targetPath: '/t' })).finish());
    // field 9 varint 150, field 10 fixed64, field 11 bytes "xy", field 12 fixed32
    const unknown = Buffer.from([
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 0x78, 0x79, 0x65, 1, 2, 3, 4,
    ]);
    expect(decodeMountRequest(Buffer.concat([unknown, known]))).toMatchObject({ attributes: '{}', target_path: '/t' });
  });

  it('refuses truncated input instead of reading past it', () => {
    expect(() => decodeMountRequest(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/truncated/);
    expect(() => decodeMountRequest(Buffer.from([0x08, 0x80]))).toThrow(/truncated/);
  });
});

describe('codec ≡ protobufjs on proto/health.proto', () => {
  it('HealthCheckRequest and HealthCheckResponse (enum by name)', () => {
    const req = T('grpc.health.v1.HealthCheckRequest');
    const res = T('grpc.health.v1.HealthCheckResponse');
    expect(plain(req, healthCheckRequest.encode({ service: 'v1alpha1.CSIDriverProvider' }))).toEqual({
      service: 'v1alpha1.CSIDriverProvider',
    });
    for (const status of ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const) {
      expect(plain(res, healthCheckResponse.encode({ status }))).toEqual({ status });
      expect(healthCheckResponse.decode(Buffer.from(res.encode(res.fromObject({ status })).finish()))).toEqual({
        status,
      });
    }
  });
});
