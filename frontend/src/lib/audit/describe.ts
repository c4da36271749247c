// A one-line gist of an event's payload for the audit table; the full payload is one click away.
import type { AuditEvent } from '$lib/api/schemas';

const isPrimitive = (v: unknown): v is string | number | boolean =>
  ['string', 'number', 'boolean'].includes(typeof v);

export function eventGist(event: AuditEvent): string {
  const data = event.data;
  if (event.type.startsWith('Model') && typeof data.name === 'string') return data.name;
  if (event.type === 'HeartbeatReceived') {
    const ollama = data.ollama as { reachable?: unknown } | undefined;
    const reachable =
      ollama && typeof ollama.reachable === 'boolean' ? (ollama.reachable ? 'Ollama up' : 'Ollama down') : '';
    return [typeof data.seq === 'number' ? `seq ${data.seq}` : '', reachable].filter(Boolean).join(' · ');
  }
  return Object.entries(data)
    .filter(([, v]) => isPrimitive(v))
    .slice(0, 3)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' · ');
}

/** `client-gpu-01` -> `gpu-01`; other streams unchanged. */
export const clientOfStream = (stream: string): string | null =>
  stream.startsWith('client-') ? stream.slice('client-'.length) : null;
