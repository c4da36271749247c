// Every view of the dashboard that the accessibility check visits, with data on it. A new page
// adds one entry here (its SvelteKit route id, how to reach it, what shows it has loaded);
// a11y.spec.ts fails when a route under src/routes has no entry.
import type { APIRequestContext, Page } from '@playwright/test';
import { agentClient, expect, type ApiClient, type StackInfo } from './stack';

export interface ViewContext {
  stack: StackInfo;
  request: APIRequestContext;
  /** The stack's one agent, registered and reporting. */
  client: ApiClient;
}

export interface DashboardView {
  /** The SvelteKit route id, as the folders under src/routes spell it ('/', '/clients/[id]'). */
  route: string;
  /** Shown in the test's title; unique. */
  name: string;
  /** The URL to open. */
  path: (context: ViewContext) => string;
  /** Waits until the view shows its data (and opens dialogs or forms the view is about). */
  ready: (page: Page, context: ViewContext) => Promise<void>;
}

export const DASHBOARD_VIEWS: DashboardView[] = [
  {
    route: '/',
    name: 'fleet',
    path: () => '/',
    ready: async (page, { client }) => {
      await expect(page.getByRole('row', { name: new RegExp(client.hostname) })).toBeVisible();
      await expect(page.getByTestId('connection-indicator')).toHaveText(/Live/);
    }
  },
  {
    route: '/clients/[id]',
    name: "a client's page",
    path: ({ client }) => `/clients/${client.client_id}`,
    ready: async (page, { client }) => {
      await expect(page.getByRole('heading', { level: 1, name: client.hostname })).toBeVisible();
      await expect(page.getByRole('table', { name: 'Installed models' })).toBeVisible();
      await expect(
        page.getByRole('list', { name: 'Client timeline' }).getByRole('listitem').first()
      ).toBeVisible();
      await expect(page.getByRole('list', { name: /Last 24 hours/ }).getByRole('button')).toHaveCount(24);
    }
  },
  {
    route: '/clients/[id]',
    name: "a client's page, an uptime bar's tooltip",
    path: ({ client }) => `/clients/${client.client_id}`,
    ready: async (page) => {
      // The latest hour holds data; keyboard focus opens its tooltip as hovering does.
      await page
        .getByRole('list', { name: /Last 24 hours/ })
        .getByRole('button')
        .last()
        .focus();
      await expect(page.getByRole('tooltip')).toContainText('available');
    }
  },
  {
    route: '/clients/[id]',
    name: 'an unknown client (error panel)',
    path: () => '/clients/no-such-client',
    ready: async (page) => {
      await expect(page.getByRole('alert')).toContainText('Could not load this client');
    }
  },
  {
    route: '/models',
    name: 'models',
    path: () => '/models',
    ready: async (page, { client }) => {
      const matrix = page.getByRole('table', { name: 'Models by host' });
      await expect(matrix).toBeVisible();
      await expect(matrix.getByText(client.hostname).first()).toBeVisible();
    }
  },
  {
    route: '/operations',
    name: 'operations, without the admin token',
    path: () => '/operations',
    ready: async (page) => {
      await expect(page.getByRole('heading', { level: 1, name: 'Operations' })).toBeVisible();
      await expect(page.getByRole('form', { name: 'Admin token' })).toBeVisible();
    }
  },
  {
    route: '/alerts',
    name: 'alerts, without the admin token',
    path: () => '/alerts',
    ready: async (page) => {
      await expect(page.getByRole('heading', { level: 1, name: 'Alerts' })).toBeVisible();
      await expect(page.getByRole('form', { name: 'Admin token' })).toBeVisible();
    }
  },
  {
    route: '/alerts',
    name: 'alerts, with the admin token, a rule and its form',
    path: () => '/alerts',
    ready: async (page, { stack, request, client }) => {
      const token = (stack as StackInfo & { admin_token?: string }).admin_token ?? '';
      const made = await request.post(`${stack.base_url}/api/v1/alerts/rules`, {
        headers: { authorization: `Bearer ${token}` },
        data: {
          name: 'Accessibility check rule',
          scope: { client_ids: [client.client_id] },
          condition: { kind: 'status', statuses: ['stopped'], for_s: 3600 },
          notify: { webhooks: [{ url: 'http://127.0.0.1:9/a11y', secret: 'a11y' }] },
          remind_every_s: 3600
        }
      });
      expect(made.ok()).toBeTruthy();
      const tokenForm = page.getByRole('form', { name: 'Admin token' });
      await tokenForm.getByLabel('Admin token').fill(token);
      await tokenForm.getByRole('button', { name: 'Use token' }).click();
      await expect(page.getByTestId('alert-rule').first()).toBeVisible();
      await page.getByRole('button', { name: 'New rule' }).click();
      await page
        .getByRole('form', { name: 'Alert rule' })
        .getByRole('button', { name: 'Add webhook' })
        .click();
    }
  },
  {
    route: '/audit',
    name: 'audit log',
    path: () => '/audit',
    ready: async (page) => {
      await expect(
        page.getByRole('table', { name: 'Events' }).getByRole('cell', { name: 'HeartbeatReceived' }).first()
      ).toBeVisible();
    }
  },
  {
    route: '/audit',
    name: 'audit log, state as of now',
    path: () => '/audit',
    ready: async (page, { client }) => {
      const form = page.getByRole('form', { name: 'State as of' });
      await form.getByLabel('Scope').selectOption({ value: client.client_id });
      await form
        .getByLabel('As of (local time)')
        .fill(new Date(Date.now() + 60_000).toISOString().slice(0, 19));
      await form.getByRole('button', { name: 'Show state' }).click();
      await expect(page.getByTestId('state-snapshot').getByTestId('state-model').first()).toBeVisible();
    }
  },
  {
    route: '/audit',
    name: "audit log, an event's payload",
    path: () => '/audit',
    ready: async (page) => {
      await page
        .getByRole('table', { name: 'Events' })
        .getByRole('button', { name: /Payload of event/ })
        .first()
        .click();
      await expect(page.getByRole('dialog').getByTestId('event-data')).toBeVisible();
    }
  },
  {
    route: '/audit',
    name: 'audit log, archived events included, and the storage panel',
    path: () => '/audit?archived=include',
    ready: async (page) => {
      await expect(
        page.getByRole('table', { name: 'Events' }).getByRole('cell', { name: 'HeartbeatReceived' }).first()
      ).toBeVisible();
      await expect(page.getByRole('region', { name: 'Storage' }).getByTestId('storage-log')).toContainText(
        'head at position'
      );
    }
  },
  {
    route: '+error',
    name: 'no such page',
    path: () => '/no-such-page',
    ready: async (page) => {
      await expect(page.getByRole('heading', { level: 1, name: 'No such page' })).toBeVisible();
    }
  }
];

export async function viewContext(request: APIRequestContext, stack: StackInfo): Promise<ViewContext> {
  return { stack, request, client: await agentClient(request, stack) };
}
