/**
 * @module spc/regions
 * Which region names a class may use. A region chosen by a tenant becomes an SDK client, an endpoint
 * host name and a metric label in the node's provider, so it must look like a real one: a name of one
 * of the AWS partitions (the patterns the SDK's endpoint data gives each partition), or one the
 * operator listed (`--extra-regions`, for a partition newer than this release). Metrics label only
 * the regions known today; others count as `other`, so series cannot grow with invented names.
 * No imports: main loads this at start without the parser.
 */

/** Region name patterns of the AWS partitions: aws, aws-cn, aws-us-gov, the ISO partitions, aws-eusc. */
const PARTITIONS: readonly RegExp[] = [
  /^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d{1,2}$/,
  /^cn-[a-z]+-\d{1,2}$/,
  /^us-gov-[a-z]+-\d{1,2}$/,
  /^us-iso[bf]?-[a-z]+-\d{1,2}$/,
  /^eu-isoe-[a-z]+-\d{1,2}$/,
  /^eusc-de-[a-z]+-\d{1,2}$/,
];

/** Regions that exist today (the SDK's endpoint data). */
const KNOWN = new Set([
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-central-1',
  'ca-west-1',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'eu-south-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'il-central-1',
  'me-central-1',
  'me-south-1',
  'me-west-1',
  'mx-central-1',
  'sa-east-1',
  'sa-west-1',
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'cn-north-1',
  'cn-northwest-1',
  'eusc-de-east-1',
  'us-iso-east-1',
  'us-iso-west-1',
  'us-isob-east-1',
  'us-isob-west-1',
  'eu-isoe-west-1',
  'us-isof-east-1',
  'us-isof-south-1',
  'us-gov-east-1',
  'us-gov-west-1',
]);

/** Why `name` cannot be a region, or undefined when it can. `extra`: names the operator allowed. */
export function regionProblem(name: string, extra: ReadonlySet<string> = new Set()): string | undefined {
  if (extra.has(name) || PARTITIONS.some((p) => p.test(name))) return undefined;
  return 'is not an AWS region name (such as us-east-1; the operator can allow others with --extra-regions)';
}

/** `name` as a metric label: itself when it is a region known today or allowed by the operator, else `other`. */
export function regionLabel(name: string, extra: ReadonlySet<string> = new Set()): string {
  return KNOWN.has(name) || extra.has(name) ? name : 'other';
}
