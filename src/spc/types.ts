/**
 * @module spc/types
 * The typed shape of a Mount request once parsed: what the rest of the provider works with.
 * Produced only by spc/ (attributes.ts, objects.ts); nothing else reads raw attributes.
 */

export type ObjectType = 'secretsmanager' | 'ssmparameter';

/** How a value is stored (our extension `objectEncoding`, docs/extensions.md); the file holds the decoded bytes. */
export type ObjectEncoding = 'utf-8' | 'base64' | 'hex';

/** How Pod Identity reaches the agent (docs/behaviour.md, "Attributes"). Unknown values are `auto`. */
export type AddressPreference = 'auto' | 'ipv4' | 'ipv6';

/** One service-account token the driver passed for an audience (`csi.storage.k8s.io/serviceAccount.tokens`). */
export interface AudienceToken {
  token: string;
  expirationTimestamp: string;
}

/** Role chaining (our extension, docs/extensions.md). */
export interface AssumeRoleSpec {
  roleArn: string;
  externalId?: string | undefined;
  /** 900–3600. */
  durationSeconds?: number | undefined;
}

/**
 * The request-level attributes, validated. Objects are parsed separately (parseObjects) because
 * their ARN-region rule needs the region, which may come from the node (docs/behaviour.md, "Region").
 */
export interface MountAttributes {
  podName: string;
  podNamespace: string;
  podUid: string;
  serviceAccountName: string;
  /** `region` parameter, '' when absent. */
  region: string;
  /** `failoverRegion` parameter, '' when absent. */
  failoverRegion: string;
  /** Replacement for '/', or false when translation is off. Default '_'. */
  pathTranslation: string | false;
  usePodIdentity: boolean;
  preferredAddressType: AddressPreference;
  /** Audience → token; undefined when the attribute is absent or empty. */
  tokens: ReadonlyMap<string, AudienceToken> | undefined;
  /** The raw `objects` YAML. */
  objects: string;
  assumeRole: AssumeRoleSpec | undefined;
  /** SecretProviderClass name, when the driver sent it (for logs). */
  secretProviderClass: string;
}

/** One extra file cut out of a JSON secret by a JMESPath expression. */
export interface JmesPathEntry {
  path: string;
  objectAlias: string;
  /** File path relative to the mount (after translation): also the ObjectVersion id. */
  fileName: string;
  /** Resolved mode (entry's, else the parent's). */
  mode: number;
  /** Our extension: 'json' writes non-string results as JSON text (docs/extensions.md). */
  render: 'string' | 'json';
  /**
   * Our extension: how the result string is encoded; the entry's own setting only (the object's is
   * not inherited: it decoded the JSON this result comes from). Absent means utf-8.
   */
  objectEncoding?: ObjectEncoding | undefined;
}

/** What the failover region reads instead of the primary's name (docs/behaviour.md, "Objects"). */
export interface FailoverObject {
  objectName: string;
  objectVersion: string;
  objectVersionLabel: string;
}

/** One entry of `objects`, validated, with every default applied. */
export interface SecretDescriptor {
  /** Position in the `objects` list. */
  index: number;
  objectName: string;
  objectType: ObjectType;
  objectAlias: string;
  objectVersion: string;
  objectVersionLabel: string;
  /** Resolved mode as a number (`"0600"` → 0o600); the request default when not set. */
  mode: number;
  /** File path relative to the mount, after translation; also the ObjectVersion id. */
  fileName: string;
  jmesPath: readonly JmesPathEntry[];
  failoverObject: FailoverObject | undefined;
  /** Our extension: a missing object is skipped instead of failing the mount. */
  optional: boolean;
  /** Our extension: every top-level key of a JSON secret becomes a file. */
  allKeys: boolean;
  /**
   * Our extension: how the whole stored value is encoded. The object's file, and the JSON its jmesPath
   * entries read, are the decoded bytes. Absent (hand-built descriptors) means utf-8.
   */
  objectEncoding?: ObjectEncoding | undefined;
  /**
   * The request's `pathTranslation`, kept so `allKeys` file names (known only after fetching) get the
   * same translation. Optional for hand-built descriptors: absent means the default '_'.
   */
  pathTranslation?: string | false | undefined;
}

/** One file a mount produces (before writing), with the version it reports. */
export interface OutputFile {
  /** Relative path inside the mount, validated by spc/ file-name rules. */
  path: string;
  mode: number;
  contents: Uint8Array;
  /** The object version reported for this file. */
  version: string;
  /** Where it comes from, for messages: `object db/creds`, `jmesPath alias user of db/creds`, `key "port" of
   * db/config`. */
  origin?: string | undefined;
}

/**
 * A file a class names, known even when the class has problems: from its objectAlias or objectName
 * (translated) and its jmesPath aliases. What `secretObjects` can be checked against in the same run.
 */
export interface DeclaredFile {
  fileName: string;
  objectName: string;
  optional: boolean;
  allKeys: boolean;
}
