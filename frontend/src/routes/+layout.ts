// A single-page app: the Python server serves index.html for every non-API path.
export const ssr = false;
export const prerender = false;
