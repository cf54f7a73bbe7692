// The wire rules of server/grpc-wire.ts, as pure functions: grpc-timeout, grpc-message, framing,
// the request headers a call must carry, and the routes' handling of what handlers return or throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkRequestHeaders,
  decodeGrpcMessage,
  encodeGrpcMessage,
  formatTimeout,
  frameMessage,
  GrpcError,
  GrpcStatus,
  messageHeader,
  MessageReader,
  parseTimeout,
  serverStreamRoute,
  unaryRoute,
  type MethodDefinition,
  type Reply,
} from './grpc-wire.js';

describe('grpc-timeout', () => {
  it.each([
    ['2H', 7_200_000],
    ['3M', 180_000],
    ['15S', 15_000],
    ['250m', 250],
    ['1500u', 1.5],
    ['2000000n', 2],
    ['0m', 0],
    ['99999999S', 99_999_999_000],
    ['00000010m', 10],
  ])('%s is %d ms', (header, ms) => {
    expect(parseTimeout(header)).toBe(ms);
  });

  it('is undefined when absent', () => {
    expect(parseTimeout(undefined)).toBeUndefined();
  });

  it.each(['', '10', 'm', '123456789m', '10s', '10 m', ' 10m', '10m ', '-5m', '1.5S', '10x', '10mm', '0x10m'])(
    '%j is malformed',
    (header) => {
      expect(parseTimeout(header)).toBeNull();
    },
  );

  it('two values are malformed; one value in an array is read', () => {
    expect(parseTimeout(['10m', '20m'])).toBeNull();
    expect(parseTimeout(['10m'])).toBe(10);
  });

  it('formats what it parses back, in at most 8 digits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (ms) => {
        const text = formatTimeout(ms);
        expect(text).toMatch(/^\d{1,8}[HMSmun]$/);
        const back = parseTimeout(text) as number;
        expect(back).toBeGreaterThanOrEqual(ms);
      }),
    );
    expect(formatTimeout(1000)).toBe('1000m');
    expect(formatTimeout(0.2)).toBe('1m');
  });
});

describe('grpc-message', () => {
  it('leaves printable ASCII as it is, and percent-encodes % and every other byte of the UTF-8', () => {
    expect(encodeGrpcMessage('provider at capacity: 8 mounts')).toBe('provider at capacity: 8 mounts');
    expect(encodeGrpcMessage('100% done')).toBe('100%25 done');
    expect(encodeGrpcMessage('é')).toBe('%C3%A9');
    expect(encodeGrpcMessage('a\nb\tc')).toBe('a%0Ab%09c');
    expect(encodeGrpcMessage('日本')).toBe('%E6%97%A5%E6%9C%AC');
    expect(encodeGrpcMessage('\u007f~ x')).toBe('%7F~ x');
    // HTTP/2 field values must not start or end with a space.
    expect(encodeGrpcMessage(' failed: ')).toBe('%20failed:%20');
    expect(encodeGrpcMessage(' ')).toBe('%20');
    expect(encodeGrpcMessage('a')).toBe('a');
    expect(encodeGrpcMessage('')).toBe('');
  });

  it('decodes what it encodes, any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        const wire = encodeGrpcMessage(text);
        expect(wire).toMatch(/^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/);
        expect(decodeGrpcMessage(wire)).toBe(text);
      }),
    );
  });

  it('decodes a stray % as itself', () => {
    expect(decodeGrpcMessage('50%')).toBe('50%');
    expect(decodeGrpcMessage('%zz%41')).toBe('%zzA');
  });
});

describe('framing', () => {
  const frames = (...messages: string[]): Buffer => Buffer.concat(messages.map((m) => frameMessage(Buffer.from(m))));

  it('frames a message: flag 0, big-endian length, the bytes', () => {
    expect([...frameMessage(Buffer.from('hi'))]).toEqual([0, 0, 0, 0, 2, 0x68, 0x69]);
    expect([...messageHeader(0x01020304)]).toEqual([0, 1, 2, 3, 4]);
  });

  it('reads messages split anywhere across chunks, several in one chunk, and empty ones', () => {
    const all = frames('first', '', 'the third message');
    for (let cut1 = 0; cut1 <= all.length; cut1++) {
      for (const cut2 of [cut1, Math.min(all.length, cut1 + 3), all.length]) {
        const reader = new MessageReader(1024);
        const got: string[] = [];
        for (const part of [all.subarray(0, cut1), all.subarray(cut1, cut2), all.subarray(cut2)])
          expect(reader.push(part, (m) => got.push(m.toString()))).toBeUndefined();
        expect(got).toEqual(['first', '', 'the third message']);
        expect(reader.partial).toBe(false);
      }
    }
  });

  it('says when a message is half-received, and the length it declared', () => {
    const reader = new MessageReader(1024);
    const one = frames('abcdef');
    reader.push(one.subarray(0, 3), () => {});
    expect([reader.partial, reader.declared]).toEqual([true, undefined]);
    reader.push(one.subarray(3, 8), () => {});
    expect([reader.partial, reader.declared]).toEqual([true, 6]);
    reader.push(one.subarray(8), () => {});
    expect(reader.partial).toBe(false);
  });

  it('refuses a message over the limit from its header alone (RESOURCE_EXHAUSTED), then takes nothing', () => {
    const reader = new MessageReader(10);
    const got: Buffer[] = [];
    const problem = reader.push(messageHeader(11), (m) => got.push(m));
    expect(problem).toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('11 vs. 10'),
    });
    expect(reader.push(frames('ok'), (m) => got.push(m))).toBeUndefined();
    expect(got).toEqual([]);
    // Exactly the limit is accepted.
    const fits = new MessageReader(10);
    expect(fits.push(frameMessage(Buffer.alloc(10)), (m) => got.push(m))).toBeUndefined();
    expect(got).toHaveLength(1);
  });

  it('refuses a compressed message (UNIMPLEMENTED): only identity is accepted', () => {
    const msg = frameMessage(Buffer.from('zz'));
    msg[0] = 1;
    const got: Buffer[] = [];
    expect(new MessageReader(1024).push(msg, (m) => got.push(m))).toMatchObject({ code: GrpcStatus.UNIMPLEMENTED });
    expect(got).toEqual([]);
  });
});

describe('request headers', () => {
  it('accepts POST with application/grpc or application/grpc+proto, identity or no encoding', () => {
    expect(checkRequestHeaders('POST', 'application/grpc', undefined)).toBeUndefined();
    expect(checkRequestHeaders('POST', 'application/grpc+proto', 'identity')).toBeUndefined();
    expect(checkRequestHeaders('POST', 'Application/GRPC; charset=utf-8', undefined)).toBeUndefined();
  });

  it('answers 405 to another method and 415 to another content type, without gRPC status', () => {
    expect(checkRequestHeaders('GET', 'application/grpc', undefined)).toEqual({ http: 405 });
    for (const type of [undefined, 'application/json', 'application/grpc+json', 'application/grpcx', 'text/plain'])
      expect(checkRequestHeaders('POST', type, undefined), String(type)).toEqual({ http: 415 });
  });

  it('answers another grpc-encoding UNIMPLEMENTED, with grpc-accept-encoding', () => {
    expect(checkRequestHeaders('POST', 'application/grpc', 'gzip')).toMatchObject({
      grpc: { code: GrpcStatus.UNIMPLEMENTED, details: expect.stringContaining('"gzip"') },
      acceptEncoding: true,
    });
  });
});

describe('routes', () => {
  const def: MethodDefinition<string, string> = {
    path: '/t.T/M',
    responseStream: false,
    encodeRequest: (m) => Buffer.from(m),
    decodeRequest: (b) => {
      if (b.toString() === 'bad') throw new Error('broken');
      return b.toString();
    },
    encodeResponse: (m) => Buffer.from(m),
    decodeResponse: (b) => b.toString(),
  };
  function reply(): Reply & { messages: string[]; status: Promise<GrpcError | undefined> } {
    let done: (e: GrpcError | undefined) => void = () => {};
    const r = {
      messages: [] as string[],
      ended: false,
      status: new Promise<GrpcError | undefined>((resolve) => (done = resolve)),
      message: (b: Buffer) => r.messages.push(b.toString()),
      end: (e?: GrpcError) => {
        r.ended = true;
        done(e);
      },
    };
    return r;
  }
  const call = { deadline: undefined, signal: new AbortController().signal };

  it('a unary handler answers its value; a GrpcError it throws is the status; anything else is INTERNAL', async () => {
    const ok = reply();
    unaryRoute(def, (req) => `echo ${req}`).handle(Buffer.from('x'), call, ok);
    expect(await ok.status).toBeUndefined();
    expect(ok.messages).toEqual(['echo x']);

    const refused = reply();
    unaryRoute(def, () => {
      throw new GrpcError(GrpcStatus.NOT_FOUND, 'nope');
    }).handle(Buffer.from('x'), call, refused);
    expect(await refused.status).toMatchObject({ code: GrpcStatus.NOT_FOUND, details: 'nope' });

    const bug = reply();
    unaryRoute(def, () => Promise.reject(new TypeError('secret detail'))).handle(Buffer.from('x'), call, bug);
    const st = await bug.status;
    expect(st?.code).toBe(GrpcStatus.INTERNAL);
    expect(st?.details).not.toContain('secret detail');
    expect(bug.messages).toEqual([]);
  });

  it('a request that does not decode is INTERNAL, and the handler never runs', async () => {
    let ran = false;
    const r = reply();
    unaryRoute(def, () => {
      ran = true;
      return '';
    }).handle(Buffer.from('bad'), call, r);
    expect(await r.status).toMatchObject({ code: GrpcStatus.INTERNAL, details: expect.stringContaining('broken') });
    expect(ran).toBe(false);
  });

  it('a streaming handler writes messages and ends', async () => {
    const r = reply();
    serverStreamRoute(def, (req, _call, out) => {
      out.write(`${req}1`);
      out.write(`${req}2`);
      out.end();
      out.write('after the end');
    }).handle(Buffer.from('m'), call, r);
    expect(await r.status).toBeUndefined();
    expect(r.messages).toEqual(['m1', 'm2']);
  });
});
