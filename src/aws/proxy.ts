/**
 * @module aws/proxy
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY for the AWS calls, routed as Go's standard library routes them
 * (golang.org/x/net/http/httpproxy), because ASCP's Go SDK honours them and the AWS SDK for
 * JavaScript does not. Two node:http agents: https targets go through a CONNECT
 * tunnel and then TLS to the target (one tunnel per pooled socket, so keep-alive stays per target);
 * http targets are sent to the proxy in absolute form (`GET http://host/path`). No dependency, and
 * not Node's own proxy support, which lacks Go's rules (docs/behaviour.md, "Proxies").
 *
 * Rules, as Go's `httpproxy.Config.ProxyFunc`:
 * - https URLs use HTTPS_PROXY (else https_proxy), http URLs use HTTP_PROXY (else http_proxy); the
 *   first non-empty one wins; there is no fallback from one scheme to the other.
 * - A proxy value without an http/https scheme is read as `http://<value>` (`proxy:3128`).
 * - NO_PROXY (else no_proxy), comma-separated: `*` = everything direct; `1.2.3.4`, `[::1]:443`,
 *   `10.0.0.0/8` (IPs, with or without port; CIDRs); `example.com` (itself and its subdomains),
 *   `.example.com` and `*.example.com` (subdomains only), each optionally `:port`.
 * - `localhost` and loopback IPs are never proxied (Go), and neither are link-local addresses
 *   (169.254.0.0/16, fe80::/10) and the EKS Pod Identity agent's fd00:ec2::23 (ours: an instance
 *   address never leaves the node).
 * Not kept from Go: the CGI rule (REQUEST_METHOD set → HTTP_PROXY ignored) and socks5 proxies (refused
 * at start with a message).
 */
import { Buffer } from 'node:buffer';
import type * as http from 'node:http';
import type * as https from 'node:https';
import { http as nodeHttp, https as nodeHttps } from '../node-http.js';
import net, { BlockList } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface ProxyOptions {
  /**
   * Send `localhost` and loopback IPs direct, as Go does (default true). Tests turn it off to reach a
   * server on 127.0.0.1 through a proxy on 127.0.0.1; nothing else should.
   */
  bypassLoopback?: boolean;
  /** Time to open the tunnel (TCP to the proxy + CONNECT answer), ms; default 10 s. */
  connectTimeoutMs?: number;
  /** Extra agent options (`ca` in tests); keep-alive with 50 sockets per target by default. */
  agentOptions?: https.AgentOptions;
  /** CA of an https:// proxy (tests); by default the system CAs and NODE_EXTRA_CA_CERTS. */
  proxyCa?: string;
}

export interface ProxyAgents {
  http: http.Agent;
  https: https.Agent;
}

/** The environment read once: proxies per scheme and the NO_PROXY rules. */
export interface ProxyConfig {
  readonly httpProxy: URL | undefined;
  readonly httpsProxy: URL | undefined;
  readonly noProxy: NoProxy;
  readonly bypassLoopback: boolean;
}

interface NoProxy {
  readonly all: boolean;
  /** IPs and CIDRs; `port` '' = any port. */
  readonly ips: readonly { list: BlockList; port: string }[];
  /** `.example.com` form; `matchHost` also matches `example.com` itself. */
  readonly domains: readonly { suffix: string; matchHost: boolean; port: string }[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** Go's getEnvAny: the first non-empty of the names. */
function envAny(env: Env, ...names: string[]): string {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== '') return v;
  }
  return '';
}

/** `proxy:3128` → `http://proxy:3128/`; socks5 and anything else unusable throws (start-up). */
export function parseProxyUrl(value: string, variable: string): URL | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  // Go reads a value without a scheme as http:// (`proxy:3128`, `user:pw@proxy:3128`).
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v);
  let u: URL;
  try {
    u = new URL(hasScheme ? v : `http://${v}`);
  } catch {
    throw new Error(`invalid proxy address in ${variable}: want http://host:port or https://host:port`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(
      `unsupported proxy scheme ${JSON.stringify(u.protocol.slice(0, -1))} in ${variable}: only http:// and ` +
        `https:// proxies are supported`,
    );
  }
  if (u.hostname === '') throw new Error(`invalid proxy address in ${variable}: no host`);
  return u;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`; brackets dropped; lower case. */
function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped?.[1] ?? h;
}

function family(ip: string): 'ipv4' | 'ipv6' | undefined {
  const f = net.isIP(ip);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

/** Go's `host:port` split for NO_PROXY entries: `[::1]:80`, `a.com:80`; anything else is all host. */
function splitHostPort(p: string): { host: string; port: string } {
  const bracket = /^\[([^\]]*)\]:(\d*)$/.exec(p);
  if (bracket) return { host: bracket[1] ?? '', port: bracket[2] ?? '' };
  const i = p.lastIndexOf(':');
  if (i > 0 && p.indexOf(':') === i) return { host: p.slice(0, i), port: p.slice(i + 1) };
  return { host: p, port: '' };
}

/** Go's `config.init` for NO_PROXY. */
export function parseNoProxy(value: string): NoProxy {
  const ips: { list: BlockList; port: string }[] = [];
  const domains: { suffix: string; matchHost: boolean; port: string }[] = [];
  for (const raw of value.split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === '') continue;
    if (p === '*') return { all: true, ips: [], domains: [] };
    const slash = p.indexOf('/');
    if (slash > 0) {
      const addr = normalizeHost(p.slice(0, slash));
      const bits = p.slice(slash + 1);
      const f = family(addr);
      if (f !== undefined && /^\d{1,3}$/.test(bits) && Number(bits) <= (f === 'ipv4' ? 32 : 128)) {
        const list = new BlockList();
        list.addSubnet(addr, Number(bits), f);
        ips.push({ list, port: '' });
      }
      continue; // Go: a bad CIDR falls through to the host rules, which a '/' never matches
    }
    const hp = splitHostPort(p);
    let host = normalizeHost(hp.host);
    const f = family(host);
    if (f !== undefined) {
      const list = new BlockList();
      list.addAddress(host, f);
      ips.push({ list, port: hp.port });
      continue;
    }
    if (host === '') continue;
    if (host.startsWith('*.')) host = host.slice(1);
    const matchHost = !host.startsWith('.');
    domains.push({ suffix: matchHost ? `.${host}` : host, matchHost, port: hp.port });
  }
  return { all: false, ips, domains };
}

/** Never proxied whatever the environment says: link-local (IMDS, Pod Identity agent). */
const LINK_LOCAL = (() => {
  const l = new BlockList();
  l.addSubnet('169.254.0.0', 16, 'ipv4');
  l.addSubnet('fe80::', 10, 'ipv6');
  l.addAddress('fd00:ec2::23', 'ipv6');
  return l;
})();

const LOOPBACK = (() => {
  const l = new BlockList();
  l.addSubnet('127.0.0.0', 8, 'ipv4');
  l.addAddress('::1', 'ipv6');
  return l;
})();

/** Reads the proxy variables once. Throws on an unusable proxy URL (so start-up fails, not a mount). */
export function proxyConfigFromEnv(env: Env, o: ProxyOptions = {}): ProxyConfig {
  return {
    httpProxy: parseProxyUrl(envAny(env, 'HTTP_PROXY', 'http_proxy'), 'HTTP_PROXY'),
    httpsProxy: parseProxyUrl(envAny(env, 'HTTPS_PROXY', 'https_proxy'), 'HTTPS_PROXY'),
    noProxy: parseNoProxy(envAny(env, 'NO_PROXY', 'no_proxy')),
    bypassLoopback: o.bypassLoopback ?? true,
  };
}

/** Go's `useProxy(canonicalAddr(url))` with our link-local rule. */
function useProxy(cfg: ProxyConfig, hostIn: string, port: string): boolean {
  const host = normalizeHost(hostIn);
  if (host === '') return true;
  const f = family(host);
  if (f !== undefined && LINK_LOCAL.check(host, f)) return false;
  if (cfg.bypassLoopback && (host === 'localhost' || (f !== undefined && LOOPBACK.check(host, f)))) return false;
  if (cfg.noProxy.all) return false;
  if (f !== undefined) {
    for (const m of cfg.noProxy.ips) if (m.list.check(host, f) && (m.port === '' || m.port === port)) return false;
  }
  for (const m of cfg.noProxy.domains) {
    if ((host.endsWith(m.suffix) || (m.matchHost && host === m.suffix.slice(1))) && (m.port === '' || m.port === port))
      return false;
  }
  return true;
}

/**
 * The proxy for a request, or undefined for a direct connection.
 * `proxyFor(cfg, 'https:', 'secretsmanager.us-east-1.amazonaws.com', 443)` → `http://proxy:3128/`.
 */
export function proxyFor(
  cfg: ProxyConfig,
  protocol: 'http:' | 'https:',
  host: string,
  port?: number | string | null,
): URL | undefined {
  const proxy = protocol === 'https:' ? cfg.httpsProxy : cfg.httpProxy;
  if (proxy === undefined) return undefined;
  const p = port === undefined || port === null || port === '' ? (protocol === 'https:' ? '443' : '80') : String(port);
  return useProxy(cfg, host, p) ? proxy : undefined;
}

/** `Basic base64(user:password)` from the proxy URL (percent-decoded, as Go's url.User), or undefined. */
function proxyAuthorization(proxy: URL): string | undefined {
  if (proxy.username === '' && proxy.password === '') return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function proxyPort(proxy: URL): number {
  return proxy.port !== '' ? Number(proxy.port) : proxy.protocol === 'https:' ? 443 : 80;
}

/** `host:port`, IPv6 in brackets. */
function authority(host: string, port: number | string): string {
  return net.isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a request is going, from the options node:http hands an agent. */
function target(options: http.ClientRequestArgs, defaultPort: number): { host: string; port: number } {
  const host = normalizeHost(options.hostname ?? options.host ?? 'localhost');
  const port =
    options.port !== undefined && options.port !== null && options.port !== '' ? Number(options.port) : defaultPort;
  return { host, port };
}

/** Opens a TCP (or TLS, for an https:// proxy) connection to the proxy and a CONNECT tunnel through it. */
function openTunnel(
  proxy: URL,
  host: string,
  port: number,
  timeoutMs: number,
  proxyTls: tls.ConnectionOptions,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const dest = authority(host, port);
    const headers: Record<string, string> = { host: dest };
    const auth = proxyAuthorization(proxy);
    if (auth !== undefined) headers['proxy-authorization'] = auth;
    const where = `proxy ${authority(normalizeHost(proxy.hostname), proxyPort(proxy))}`;
    const req = (proxy.protocol === 'https:' ? nodeHttps : nodeHttp).request({
      host: normalizeHost(proxy.hostname),
      port: proxyPort(proxy),
      method: 'CONNECT',
      path: dest,
      headers,
      agent: false,
      timeout: timeoutMs,
      ...(proxy.protocol === 'https:' ? proxyTls : {}),
    });
    req.once('connect', (res, socket, head) => {
      res.resume();
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(
          new Error(
            `${where} refused CONNECT ${dest}: HTTP ${res.statusCode ?? '?'}` +
              (res.statusCode === 407 ? ' (check the user:password in HTTPS_PROXY)' : ''),
          ),
        );
        return;
      }
      socket.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('timeout', () => req.destroy(new Error(`${where}: no tunnel to ${dest} within ${timeoutMs} ms`)));
    req.once('error', (err) => reject(new Error(`${where}: CONNECT ${dest} failed: ${err.message}`, { cause: err })));
    req.end();
  });
}

/** node:http's Agent internals we extend (stable since Node 0.x, untyped in @types/node). */
interface AgentInternals {
  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void;
}
type RequestInternals = http.ClientRequest & { _header?: string | null };

/** Plain-http targets: direct, or to the proxy with the request line in absolute form. */
class ProxyHttpAgent extends nodeHttp.Agent {
  constructor(
    private readonly cfg: ProxyConfig,
    private readonly proxyTls: tls.ConnectionOptions,
    options: http.AgentOptions,
  ) {
    super(options);
  }

  addRequest(req: RequestInternals, options: http.ClientRequestArgs): void {
    const { host, port } = target(options, 80);
    const proxy = proxyFor(this.cfg, 'http:', host, port);
    if (proxy !== undefined && !/^[a-z]+:\/\//i.test(req.path)) {
      const absolute = `http://${port === 80 ? authority(host, '').slice(0, -1) : authority(host, port)}${req.path}`;
      const auth = proxyAuthorization(proxy);
      if (typeof req._header === 'string') {
        // Headers already stored (e.g. `Expect`): rewrite the request line, add the auth line.
        const [line = '', ...rest] = req._header.split('\r\n');
        req._header = [
          line.replace(` ${req.path} `, ` ${absolute} `),
          ...(auth !== undefined ? [`Proxy-Authorization: ${auth}`] : []),
          ...rest,
        ].join('\r\n');
      } else if (auth !== undefined) {
        req.setHeader('Proxy-Authorization', auth);
      }
      req.path = absolute;
    }
    (nodeHttp.Agent.prototype as unknown as AgentInternals).addRequest.call(this, req, options);
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const { host, port } = target(options, 80);
    const proxy = proxyFor(this.cfg, 'http:', host, port);
    if (proxy === undefined) return super.createConnection(options, callback);
    const to = {
      host: normalizeHost(proxy.hostname),
      port: proxyPort(proxy),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    };
    return proxy.protocol === 'https:'
      ? tls.connect({ ...this.proxyTls, ...to, ...(net.isIP(to.host) === 0 ? { servername: to.host } : {}) })
      : net.connect(to);
  }
}

/** https targets: direct TLS, or TLS inside a CONNECT tunnel (the pooled socket is the TLS one). */
class ProxyHttpsAgent extends nodeHttps.Agent {
  constructor(
    private readonly cfg: ProxyConfig,
    private readonly connectTimeoutMs: number,
    private readonly proxyTls: tls.ConnectionOptions,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const { host, port } = target(options, 443);
    const proxy = proxyFor(this.cfg, 'https:', host, port);
    if (proxy === undefined) return super.createConnection(options, callback);
    openTunnel(proxy, host, port, this.connectTimeoutMs, this.proxyTls).then(
      (socket) => {
        // Node's https createConnection over our socket: TLS to the target, session reuse per target.
        const secure = super.createConnection({ ...options, socket } as https.RequestOptions);
        if (secure) callback?.(null, secure);
        else callback?.(new Error(`TLS to ${authority(host, port)} through the proxy did not start`), socket);
      },
      (err: Error) => callback?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * Agents for the AWS SDK's NodeHttpHandler when a proxy variable is set, else undefined (then
 * AwsClientFactory keeps its plain keep-alive agents). Throws on an unusable proxy URL.
 */
export function proxyAgentsFromEnv(env: Env, o: ProxyOptions = {}): ProxyAgents | undefined {
  const cfg = proxyConfigFromEnv(env, o);
  if (cfg.httpProxy === undefined && cfg.httpsProxy === undefined) return undefined;
  const agentOptions: https.AgentOptions = { keepAlive: true, maxSockets: 50, ...o.agentOptions };
  // An https:// proxy is verified on its own CA, not on the `ca` the targets use.
  const proxyTls: tls.ConnectionOptions = o.proxyCa !== undefined ? { ca: o.proxyCa } : {};
  return {
    http: new ProxyHttpAgent(cfg, proxyTls, agentOptions),
    https: new ProxyHttpsAgent(cfg, o.connectTimeoutMs ?? 10_000, proxyTls, agentOptions),
  };
}
