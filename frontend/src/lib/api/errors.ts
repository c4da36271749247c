// Errors raised by the API wrapper. Everything derives from DashboardError so a page can
// catch one type and still tell a server error, a network failure and a contract break apart.

export class DashboardError extends Error {
  override name = 'DashboardError';
}

/** The server answered with an error status; `code` and `detail` come from its JSON body. */
export class ApiError extends DashboardError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly path: string
  ) {
    super(`${path}: ${status} ${code}: ${detail}`);
  }
}

/** The request never got an answer (server down, proxy error, aborted). */
export class NetworkError extends DashboardError {
  override name = 'NetworkError';
  constructor(
    readonly path: string,
    readonly cause?: unknown
  ) {
    super(`${path}: the server could not be reached`);
  }
}

/** A response did not match its schema: the server and the dashboard disagree on the contract. */
export class SchemaError extends DashboardError {
  override name = 'SchemaError';
  constructor(
    readonly path: string,
    /** Dotted location of the first offending field, e.g. `items.3.status`. */
    readonly field: string,
    readonly issue: string
  ) {
    super(`${path}: unexpected response at "${field || '(root)'}": ${issue}`);
  }
}
