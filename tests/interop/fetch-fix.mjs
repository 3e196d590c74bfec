// Node's fetch returns responses with immutable headers, which the gateway edits
// ("TypeError: immutable"); hand it responses with mutable copies.
const original = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const r = await original(...args);
  return new Response(r.body, { status: r.status, statusText: r.statusText, headers: new Headers(r.headers) });
};
