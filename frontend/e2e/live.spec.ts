// The dashboard's live feed across a network drop: what happens while the browser is offline
// arrives once it is back, through the resumed stream alone (nothing is reloaded).
// Chromium's offline emulation fails new requests but leaves an open stream be, so the page
// talks to the server through a TCP relay that the test cuts, as a real network drop would.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { APIRequestContext, BrowserContext, Page } from '@playwright/test';
import { expect, test, type StackInfo } from './stack';

/** Forwards connections to the server; `cut()` drops them all and refuses new ones. */
class Relay {
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private readonly server: Server;

  constructor(target: URL) {
    this.server = createServer((downstream) => {
      if (this.refusing) return void downstream.destroy();
      const upstream = connect(Number(target.port), target.hostname);
      for (const socket of [downstream, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      downstream.pipe(upstream).pipe(downstream);
      downstream.on('close', () => upstream.destroy());
      upstream.on('close', () => downstream.destroy());
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  cut(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}

interface StackWithToken extends StackInfo {
  enrollment_token?: string;
}

const CLIENT = `e2e-live-${Date.now().toString(36)}`;
const SESSION = '3f0c2f5e-7b7a-4c55-9c1e-0d7e0a1b2c3d';

async function register(request: APIRequestContext, stack: StackWithToken): Promise<string> {
  const response = await request.post(`${stack.base_url}/api/v1/agents/register`, {
    headers: { Authorization: `Bearer ${stack.enrollment_token}` },
    data: {
      client_id: CLIENT,
      hostname: `host-${CLIENT}`,
      session_id: SESSION,
      ollama: { installed: true, reachable: true, version: '0.9.6' }
    }
  });
  expect(response.status()).toBe(201);
  return ((await response.json()) as { client_secret: string }).client_secret;
}

const WATCHED_TYPES = ['OllamaBecameUnavailable', 'ClientTimedOut'];

/** Timeline entries of the client by type, as the API (not the page) has them. */
async function typeCounts(request: APIRequestContext, stack: StackInfo): Promise<Record<string, number>> {
  const response = await request.get(`${stack.base_url}/api/v1/clients/${CLIENT}/timeline?limit=1000`);
  const counts: Record<string, number> = {};
  for (const entry of ((await response.json()) as { items: { type: string }[] }).items) {
    counts[entry.type] = (counts[entry.type] ?? 0) + 1;
  }
  return counts;
}

async function heartbeat(
  request: APIRequestContext,
  stack: StackInfo,
  secret: string,
  seq: number,
  reachable: boolean
): Promise<void> {
  const response = await request.post(`${stack.base_url}/api/v1/agents/${CLIENT}/heartbeats`, {
    headers: { Authorization: `Bearer ${secret}` },
    data: { seq, session_id: SESSION, ollama: { reachable, error: reachable ? null : 'refused' } }
  });
  expect(response.status()).toBe(200);
}

test('changes made while the browser was offline arrive when it is back, without a reload', async ({
  page,
  context,
  request,
  stack
}) => {
  const withToken = stack as StackWithToken;
  test.skip(!withToken.enrollment_token, 'the stack did not say its enrollment token');
  const secret = await register(request, withToken);
  await heartbeat(request, stack, secret, 1, true);

  const relay = new Relay(new URL(stack.base_url));
  const relayed = await relay.listen();
  try {
    await offlineAndBack(page, context, request, stack, secret, relayed, relay);
  } finally {
    await relay.close();
  }
});

async function offlineAndBack(
  page: Page,
  context: BrowserContext,
  request: APIRequestContext,
  stack: StackInfo,
  secret: string,
  relayed: string,
  relay: Relay
): Promise<void> {
  const streams: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/v1/live') streams.push(r.url());
  });
  await page.goto(`${relayed}/clients/${CLIENT}`);
  const indicator = page.getByTestId('connection-indicator');
  await expect(indicator).toHaveText(/Live/);
  // The page watches its client only, from the very first stream on.
  const watched = (url: string) => new URL(url).searchParams.get('watch')?.split(',').sort();
  expect(streams.map(watched)).toEqual(
    streams.map(() => ['counts', `client:${CLIENT}`, `timeline:${CLIENT}`].sort())
  );
  const timeline = page.getByRole('list', { name: 'Client timeline' });
  await expect(timeline.locator('[data-type="ClientRegistered"]')).toHaveCount(1);
  await page.evaluate(() => ((window as unknown as { e2eMarker: number }).e2eMarker = 1));

  // From here the timeline can only grow through the live feed: any reload of it fails, and
  // is counted.
  let reloads = 0;
  await page.route('**/api/v1/clients/*/timeline**', async (route) => {
    reloads += 1;
    await route.abort();
  });

  await heartbeat(request, stack, secret, 2, true); // the timeout clock starts again now ...
  const before = await typeCounts(request, stack);
  for (const type of WATCHED_TYPES) {
    await expect(timeline.locator(`[data-type="${type}"]`)).toHaveCount(before[type] ?? 0);
  }
  await context.setOffline(true);
  relay.cut();
  await expect(indicator).toHaveText(/Reconnecting/);

  // ... and while the browser is offline: Ollama goes down, then the agent falls silent.
  await heartbeat(request, stack, secret, 3, false);
  await expect
    .poll(
      async () => {
        const response = await request.get(`${stack.base_url}/api/v1/clients/${CLIENT}`);
        return ((await response.json()) as { status: string }).status;
      },
      { message: 'the client never timed out', timeout: 30_000 }
    )
    .toBe('offline');

  relay.restore();
  await context.setOffline(false);
  await expect(indicator).toHaveText(/Live/, { timeout: 40_000 });
  const after = await typeCounts(request, stack);
  for (const type of WATCHED_TYPES) {
    expect(after[type], `one more ${type} while offline`).toBe((before[type] ?? 0) + 1);
    await expect(timeline.locator(`[data-type="${type}"]`)).toHaveCount(after[type] ?? 0);
  }
  await expect(page.getByTestId('status-badge').first()).toHaveText('offline');
  expect(reloads, 'the page reloaded its timeline instead of resuming the stream').toBe(0);
  const resumedFrom = new URL(streams[streams.length - 1]!).searchParams.get('last_event_id');
  expect(Number(resumedFrom), 'the reconnect did not resume').toBeGreaterThan(0);
  expect(await page.evaluate(() => (window as unknown as { e2eMarker?: number }).e2eMarker)).toBe(1);
}
