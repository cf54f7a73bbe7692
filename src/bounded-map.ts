/**
 * @module bounded-map (a leaf)
 * The one eviction rule every in-memory cache of the provider uses: a Map kept in insertion order,
 * the key just set moved to the newest end, the oldest entries dropped past `max`. Caches of a
 * node daemon must not grow with the number of pods, identities or classes it has ever seen.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done === true) break;
    map.delete(oldest.value);
  }
}
