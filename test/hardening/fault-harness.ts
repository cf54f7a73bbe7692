/**
 * The fault suite's additions to the integration harness (test/helpers/harness.ts, used as is):
 * a TCP gate on a port known before the provider starts (so `--pod-identity-endpoint` and
 * `AWS_ENDPOINT_URL_<SERVICE>` can point at it, and it can refuse connections for real, then
 * accept them again on the same port), an injectable emulator clock, and small helpers to read
 * refusals and the call log.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import type { CallRecord, Emulator } from '../../tools/emulator/index.js';
import { startHarness, type Harness, type HarnessOptions } from '../helpers/harness.js';

/**
 * A loopback TCP port that forwards to a target set later, or refuses connections (nothing listens)
 * until `open()` again. Connections are piped byte for byte.
 */
export class TcpGate {
  #server: Server | undefined;
  #port = 0;
  #target: { host: string; port: number } | undefined;
  /** Connections accepted so far (dropped ones included). */
  accepted = 0;
  readonly #sockets = new Set<Socket>();

  get port(): number {
    return this.#port;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Accept connections and close them at once (a peer that is up but not serving: ECONNRESET). */
  drop(): void {
    this.#target = undefined;
  }

  /** Forward to `url` (an `http://host:port/...` URL: only host and port are used). */
  forwardTo(url: string): void {
    const u = new URL(url);
    this.#target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
  }

  /** Starts listening (port 0 the first time, the same port after a `refuse()`). */
  async open(): Promise<void> {
    if (this.#server !== undefined) return;
    const server = createServer((client) => {
      this.#track(client);
      this.accepted += 1;
      const t = this.#target;
      if (t === undefined) {
        client.destroy();
        return;
      }
      const upstream = connect(t.port, t.host);
      this.#track(upstream);
      client.pipe(upstream).pipe(client);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops listening (new connections: ECONNREFUSED) and cuts open ones. */
  async refuse(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const c of this.#sockets) c.destroy();
    await closed;
  }

  close(): Promise<void> {
    return this.refuse();
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
  }
}

export interface FaultHarness extends Harness {
  /** In front of the emulator's Pod Identity agent; `--pod-identity-endpoint` points here. */
  agentGate: TcpGate;
  /** In front of the emulator for Secrets Manager only (AWS_ENDPOINT_URL_SECRETS_MANAGER). */
  smGate: TcpGate;
  /** The emulator's clock offset in ms (token and session expiry): move time forward with it. */
  clock: { offsetMs: number };
}

/**
 * The integration harness with the gates and the clock. The gates listen before the provider
 * starts, so their URLs go into its flags; they forward to the emulator once it is up.
 */
export async function startFaultHarness(o: HarnessOptions = {}): Promise<FaultHarness> {
  const agentGate = new TcpGate();
  const smGate = new TcpGate();
  await agentGate.open();
  await smGate.open();
  const clock = { offsetMs: 0 };
  const h = await startHarness({
    ...o,
    flags: async (emu) => [
      `--pod-identity-endpoint=${agentGate.url}/v1/credentials`,
      ...(typeof o.flags === 'function' ? await o.flags(emu) : (o.flags ?? [])),
    ],
    emulator: { ...o.emulator, now: () => Date.now() + clock.offsetMs },
  });
  agentGate.forwardTo(h.emu.url);
  smGate.forwardTo(h.emu.url);
  // The SDK reads the service-specific variable before AWS_ENDPOINT_URL; SDK clients are built at the first mount.
  process.env['AWS_ENDPOINT_URL_SECRETS_MANAGER'] = smGate.url;
  const close = h.close.bind(h);
  return Object.assign(h, {
    agentGate,
    smGate,
    clock,
    async close() {
      delete process.env['AWS_ENDPOINT_URL_SECRETS_MANAGER'];
      await close();
      await agentGate.close();
      await smGate.close();
    },
  });
}

/** The gRPC error of a refused mount (fails the test if the mount succeeded). */
export async function refused(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    return { code: e.code ?? -1, details: e.details ?? String(err) };
  }
  throw new Error('expected the mount to be refused, and it succeeded');
}

/** Calls the emulator saw since `mark` (an index into `emu.calls`), filtered. */
export function callsSince(
  emu: Emulator,
  mark: number,
  filter: Partial<Pick<CallRecord, 'service' | 'operation' | 'region'>> = {},
): CallRecord[] {
  return emu.calls
    .slice(mark)
    .filter(
      (c) =>
        (filter.service === undefined || c.service === filter.service) &&
        (filter.operation === undefined || c.operation === filter.operation) &&
        (filter.region === undefined || c.region === filter.region),
    );
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Runs `body` with the fault in place, then removes it (even when `body` fails). */
export async function withFault<T>(
  emu: Emulator,
  fault: Parameters<Emulator['addFault']>[0],
  body: () => Promise<T>,
): Promise<T> {
  const id = emu.addFault(fault);
  try {
    return await body();
  } finally {
    emu.removeFault(id);
  }
}
