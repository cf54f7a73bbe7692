/**
 * @module bytes
 * Byte counts as messages state them, one way everywhere: a bound (`4 MiB`, `512 KiB`, `100 bytes`)
 * exactly, a measured size (`3.2 MiB`) to a tenth.
 */

/** A bound, exact: MiB or KiB when it is a whole number of them, else bytes. */
export function describeBytes(n: number): string {
  if (n >= 1048576 && n % 1048576 === 0) return `${n / 1048576} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** A measured size, to a tenth of a MiB. */
export function describeSize(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
