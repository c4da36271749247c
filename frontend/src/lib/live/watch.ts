// What each page shows, as the live feed's `watch` items: the feed then sends only those
// documents (coalesced, at most one message per document a second) plus the fleet's counts.
import type { ClientSummary } from '$lib/api/schemas';

/** At most this many rows are watched by id (the server takes up to 1,000 items). */
export const MAX_WATCHED_ROWS = 500;

export interface WatchedView {
  /** The route's path, e.g. `/`, `/clients/abc`, `/models`. */
  pathname: string;
  /** The fleet table's rows in view (the fleet page only). */
  rows?: readonly Pick<ClientSummary, 'client_id'>[];
}

export function watchFor(view: WatchedView): string[] {
  const path = view.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') {
    const rows = (view.rows ?? []).slice(0, MAX_WATCHED_ROWS);
    return ['counts', 'timeline', ...rows.map((row) => `client:${row.client_id}`)];
  }
  const client = /^\/clients\/([^/]+)$/.exec(path);
  if (client) {
    const id = decodeURIComponent(client[1]!);
    return ['counts', `client:${id}`, `timeline:${id}`];
  }
  if (path === '/models') return ['counts', 'models'];
  return ['counts'];
}
