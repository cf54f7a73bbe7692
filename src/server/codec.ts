/**
 * @module server/codec
 * Protocol-buffer encoding of the few messages we serve — `proto/service.proto` (the driver's API)
 * and `proto/health.proto` — written out by hand, and the service definitions built on it (server/grpc-wire.ts's
 * MethodDefinition: what server/grpc-server.ts routes by path, and SocketProbe's client calls).
 *
 * Why not @grpc/proto-loader at run time: it brings the whole protobufjs parser and reflection
 * (~12 MiB of resident memory measured in an idle provider) to decode five flat messages, inside a
 * 100Mi box (docs/benchmarks.md). The .proto files stay the contract: `codec.test.ts` checks this codec against
 * protobufjs loading those very files, field for field, in both directions. The emulator's driver
 * client still loads the proto with proto-loader, as the driver does with its generated code.
 *
 * Why not generated code (buf + ts-proto over @bufbuild/protobuf's wire module, the smallest runtime
 * of the generators): measured in its place, it loaded ~37 KiB more JavaScript for ~0.1 MiB more
 * idle RSS and no start-up gain, and needed a well-formedness check to refuse what this codec
 * refuses (docs/benchmarks.md, "Generated wire code against the hand-written codec (measured; the codec stays)").
 *
 * Wire format (proto3): each field is a varint key `(number << 3) | wireType`; strings, bytes and
 * messages are wire type 2 (length-delimited); int32/enum wire type 0 (varint; negative int32 as a
 * 10-byte two's-complement varint). Unknown fields are skipped; for repeated messages every
 * occurrence is kept; for singular fields the last one wins.
 */
import type { MethodDefinition } from './grpc-wire.js';

// ---- writer ------------------------------------------------------------------------------------

class Writer {
  private readonly parts: Buffer[] = [];
  private length = 0;

  private push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  varint(n: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(n));
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.push(Buffer.from(bytes));
  }

  key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** proto3: a default value (empty string, 0) is not written. */
  string(field: number, value: string | undefined): void {
    if (!value) return;
    const b = Buffer.from(value, 'utf8');
    this.key(field, 2);
    this.varint(b.length);
    this.push(b);
  }

  bytes(field: number, value: Uint8Array | undefined): void {
    if (!value || value.length === 0) return;
    this.key(field, 2);
    this.varint(value.length);
    this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  int32(field: number, value: number | undefined): void {
    if (!value) return;
    this.key(field, 0);
    this.varint(value | 0);
  }

  message(field: number, encoded: Buffer): void {
    this.key(field, 2);
    this.varint(encoded.length);
    this.push(encoded);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

// ---- reader ------------------------------------------------------------------------------------

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      if (shift > 63n) throw new Error('varint too long');
      const byte = this.buf[this.pos++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  }

  /** A length-delimited payload. */
  chunk(): Buffer {
    const len = Number(this.varint());
    if (len < 0 || this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.chunk();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.buf.length) throw new Error('truncated field');
  }

  /** Calls `field(number, wireType, reader)` for each field; it reads the field or returns false to skip it. */
  fields(field: (n: number, wireType: number, r: Reader) => boolean): void {
    while (!this.done) {
      const key = Number(this.varint());
      const n = key >>> 3;
      const wt = key & 7;
      if (n === 0) throw new Error('field number 0');
      if (!field(n, wt, this)) this.skip(wt);
    }
  }
}

const text = (b: Buffer): string => b.toString('utf8');
const int32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

// ---- messages (field numbers as in proto/*.proto) ----------------------------------------------

export interface ObjectVersionMessage {
  id: string;
  version: string;
}
export interface MountRequestMessage {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: ObjectVersionMessage[];
}
export interface FileMessage {
  path: string;
  mode: number;
  contents: Uint8Array;
}
export interface MountResponseMessage {
  object_version: ObjectVersionMessage[];
  error?: { code: string } | null | undefined;
  files: FileMessage[];
}
export interface VersionRequestMessage {
  version: string;
}
export interface VersionResponseMessage {
  version: string;
  runtime_name: string;
  runtime_version: string;
}

function encodeObjectVersion(v: ObjectVersionMessage): Buffer {
  const w = new Writer();
  w.string(1, v.id);
  w.string(2, v.version);
  return w.finish();
}

function decodeObjectVersion(b: Buffer): ObjectVersionMessage {
  const out: ObjectVersionMessage = { id: '', version: '' };
  new Reader(b).fields((n, wt, r) => {
    if (wt !== 2) return false;
    if (n === 1) out.id = text(r.chunk());
    else if (n === 2) out.version = text(r.chunk());
    else return false;
    return true;
  });
  return out;
}

export function encodeMountRequest(m: Partial<MountRequestMessage>): Buffer {
  const w = new Writer();
  w.string(1, m.attributes);
  w.string(2, m.secrets);
  w.string(3, m.target_path);
  w.string(4, m.permission);
  for (const v of m.current_object_version ?? []) w.message(5, encodeObjectVersion(v));
  return w.finish();
}

export function decodeMountRequest(b: Buffer): MountRequestMessage {
  const out: MountRequestMessage = {
    attributes: '',
    secrets: '',
    target_path: '',
    permission: '',
    current_object_version: [],
  };
  new Reader(b).fields((n, wt, r) => {
    if (wt !== 2) return false;
    switch (n) {
      case 1:
        out.attributes = text(r.chunk());
        return true;
      case 2:
        out.secrets = text(r.chunk());
        return true;
      case 3:
        out.target_path = text(r.chunk());
        return true;
      case 4:
        out.permission = text(r.chunk());
        return true;
      case 5:
        out.current_object_version.push(decodeObjectVersion(r.chunk()));
        return true;
      default:
        return false;
    }
  });
  return out;
}

function encodeFile(f: FileMessage): Buffer {
  const w = new Writer();
  w.string(1, f.path);
  w.int32(2, f.mode);
  w.bytes(3, f.contents);
  return w.finish();
}

function decodeFile(b: Buffer): FileMessage {
  const out: FileMessage = { path: '', mode: 0, contents: Buffer.alloc(0) };
  new Reader(b).fields((n, wt, r) => {
    if (n === 1 && wt === 2) out.path = text(r.chunk());
    else if (n === 2 && wt === 0) out.mode = int32(r.varint());
    else if (n === 3 && wt === 2) out.contents = Buffer.from(r.chunk());
    else return false;
    return true;
  });
  return out;
}

export function encodeMountResponse(m: MountResponseMessage): Buffer {
  const w = new Writer();
  for (const v of m.object_version) w.message(1, encodeObjectVersion(v));
  if (m.error) {
    const e = new Writer();
    e.string(1, m.error.code);
    w.message(2, e.finish());
  }
  for (const f of m.files) w.message(3, encodeFile(f));
  return w.finish();
}

export function decodeMountResponse(b: Buffer): MountResponseMessage {
  const out: MountResponseMessage = { object_version: [], error: null, files: [] };
  new Reader(b).fields((n, wt, r) => {
    if (wt !== 2) return false;
    if (n === 1) out.object_version.push(decodeObjectVersion(r.chunk()));
    else if (n === 2) {
      const err = { code: '' };
      new Reader(r.chunk()).fields((m, t, q) => (m === 1 && t === 2 ? ((err.code = text(q.chunk())), true) : false));
      out.error = err;
    } else if (n === 3) out.files.push(decodeFile(r.chunk()));
    else return false;
    return true;
  });
  return out;
}

/** Messages whose fields are all strings, by field number. */
function stringMessage<T extends object>(
  fields: readonly (keyof T & string)[],
): { encode: (m: Partial<T>) => Buffer; decode: (b: Buffer) => T } {
  return {
    encode(m) {
      const w = new Writer();
      fields.forEach((f, i) => w.string(i + 1, m[f] as string | undefined));
      return w.finish();
    },
    decode(b) {
      const out = Object.fromEntries(fields.map((f) => [f, ''])) as T;
      new Reader(b).fields((n, wt, r) => {
        const f = fields[n - 1];
        if (f === undefined || wt !== 2) return false;
        (out as Record<string, string>)[f] = text(r.chunk());
        return true;
      });
      return out;
    },
  };
}

export const versionRequest = stringMessage<VersionRequestMessage>(['version']);
export const versionResponse = stringMessage<VersionResponseMessage>(['version', 'runtime_name', 'runtime_version']);

// ---- grpc.health.v1 ----------------------------------------------------------------------------

export type ServingStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const SERVING_STATUS: readonly ServingStatusName[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

export interface HealthCheckRequestMessage {
  service: string;
}
export interface HealthCheckResponseMessage {
  status: ServingStatusName;
}

export const healthCheckRequest = stringMessage<HealthCheckRequestMessage>(['service']);
export const healthCheckResponse = {
  encode(m: HealthCheckResponseMessage): Buffer {
    const w = new Writer();
    w.int32(1, Math.max(0, SERVING_STATUS.indexOf(m.status)));
    return w.finish();
  },
  decode(b: Buffer): HealthCheckResponseMessage {
    const out: HealthCheckResponseMessage = { status: 'UNKNOWN' };
    new Reader(b).fields((n, wt, r) => {
      if (n !== 1 || wt !== 0) return false;
      out.status = SERVING_STATUS[int32(r.varint())] ?? 'UNKNOWN';
      return true;
    });
    return out;
  },
};

// ---- service definitions -----------------------------------------------------------------------

function method<Req, Res>(
  path: string,
  req: { encode: (m: Req) => Buffer; decode: (b: Buffer) => Req },
  res: { encode: (m: Res) => Buffer; decode: (b: Buffer) => Res },
  responseStream = false,
): MethodDefinition<Req, Res> {
  return {
    path,
    responseStream,
    encodeRequest: req.encode,
    decodeRequest: req.decode,
    encodeResponse: res.encode,
    decodeResponse: res.decode,
  };
}

/** `v1alpha1.CSIDriverProvider`, as proto/service.proto declares it. */
export const providerService = {
  Version: method('/v1alpha1.CSIDriverProvider/Version', versionRequest, versionResponse),
  Mount: method(
    '/v1alpha1.CSIDriverProvider/Mount',
    { encode: encodeMountRequest, decode: decodeMountRequest },
    { encode: encodeMountResponse, decode: decodeMountResponse },
  ),
};

/** `grpc.health.v1.Health`, as proto/health.proto declares it. */
export const healthService = {
  Check: method('/grpc.health.v1.Health/Check', healthCheckRequest, healthCheckResponse),
  Watch: method('/grpc.health.v1.Health/Watch', healthCheckRequest, healthCheckResponse, true),
};
