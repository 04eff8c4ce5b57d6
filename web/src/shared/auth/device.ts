/** Device sign-in: an id made once and kept in this browser (the API's AuthMode=device). */

const KEY = "parley.deviceId";
const PATTERN = /^[A-Za-z0-9_-]{8,64}$/;

export function deviceId(storage: Storage = localStorage): string {
  const kept = storage.getItem(KEY);
  if (kept && PATTERN.test(kept)) return kept;
  const made = `web-${crypto.randomUUID()}`;
  storage.setItem(KEY, made);
  return made;
}
