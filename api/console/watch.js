// One watch stream of GET /tenants?watch=true...: read with fetch (an
// EventSource cannot send a bearer token), parsed as Server-Sent Events,
// reconnected with Last-Event-ID after a cut (0.5 s, doubling to 10 s) and
// with a renewed token when the stream ends at the old one's expiry.
// What the events mean (reset, added, modified, deleted, synced) is left to
// the caller.

import { currentToken, expired, refused } from './session.js';

/**
 * Watches `path`; `onEvent(kind, data)` gets each event with its parsed
 * data, `onLive(live)` whether the stream is connected, `onRefused(status)`
 * an answer that trying again cannot change (400, 403, 404), after which
 * the watch ends. Returns `stop()`.
 */
export function watch(path, { onEvent, onLive = () => {}, onRefused = () => {} }) {
  const controller = new AbortController();
  run(path, controller.signal, { onEvent, onLive, onRefused });
  return () => controller.abort();
}

async function run(path, signal, { onEvent, onLive, onRefused }) {
  let lastId = '';
  let delay = 500;
  let renewed = false; // the token was just renewed after a 401
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${await currentToken()}`, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const response = await fetch(path, { headers, signal });
      // Renewed: reconnect at once with the new token (once); else signed out.
      if (response.status === 401) {
        if (!renewed && await refused()) { renewed = true; continue; }
        if (renewed) expired();
        return;
      }
      renewed = false;
      if ([400, 403, 404].includes(response.status)) { onRefused(response.status); return; }
      if (!response.ok) throw new Error(`watch answered ${response.status}`);
      onLive(true);
      delay = 500;
      // One decoder on the body's own reader: each chunk costs a single read.
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let event = { event: 'message', data: [], id: undefined };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        // One pass over the chunk's lines; only the unfinished tail is kept.
        let start = 0;
        let end;
        while ((end = buffer.indexOf('\n', start)) >= 0) {
          let line = buffer.slice(start, end);
          start = end + 1;
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            if (event.id !== undefined) lastId = event.id;
            // A failing handler is reported, not taken for a broken stream.
            if (event.data.length && !signal.aborted) {
              try { onEvent(event.event, JSON.parse(event.data.join('\n'))); } catch (error) { reportError(error); }
            }
            event = { event: 'message', data: [], id: undefined };
            continue;
          }
          if (line.startsWith(':')) continue; // heartbeat
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? '' : line.slice(colon + 1);
          if (text.startsWith(' ')) text = text.slice(1);
          if (field === 'event') event.event = text;
          else if (field === 'data') event.data.push(text);
          else if (field === 'id') event.id = text;
        }
        buffer = buffer.slice(start);
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    onLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}
