// What the specs know about the running stack, and the handles they use to change it:
// the fake Ollama's control API and the agent's process.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base, expect, type APIRequestContext } from '@playwright/test';

/**
 * Where global setup leaves the stack's details for the specs. Each run has its own file (global
 * setup names it in OBT_E2E_STACK_FILE, which the workers inherit), so two runs in one tree
 * never read each other's stack.
 */
export function stackFile(): string {
  return process.env.OBT_E2E_STACK_FILE ?? join(dirname(fileURLToPath(import.meta.url)), '.stack.json');
}

export interface StackInfo {
  base_url: string;
  /** The fake Ollama's control API (`.../_fake`); a bare base URL also works. */
  ollama_control_url: string;
  agent_pid: number | null;
  client_id?: string;
  timeout_s?: number;
  heartbeat_interval_s?: number;
}

export function readStack(): StackInfo {
  return JSON.parse(readFileSync(stackFile(), 'utf8')) as StackInfo;
}

export function controlUrl(stack: StackInfo, path: string): string {
  const root = stack.ollama_control_url.replace(/\/+$/, '');
  return `${root.endsWith('/_fake') ? root : `${root}/_fake`}${path}`;
}

/** Switches the fake Ollama: ok | down | error | slow | garbage ... */
export async function setOllamaMode(
  request: APIRequestContext,
  stack: StackInfo,
  mode: string
): Promise<void> {
  const response = await request.post(controlUrl(stack, '/mode'), { data: { mode } });
  expect(response.ok(), `fake Ollama refused mode ${mode}`).toBeTruthy();
}

export async function addOllamaModel(
  request: APIRequestContext,
  stack: StackInfo,
  name: string
): Promise<void> {
  const response = await request.post(controlUrl(stack, '/models'), { data: { name } });
  expect(response.ok(), `fake Ollama refused model ${name}`).toBeTruthy();
}

export interface ApiClient {
  client_id: string;
  hostname: string;
  status: string;
  models?: { name: string }[];
}

/** The agent's client as the API reports it (the stack runs exactly one agent). */
export async function agentClient(request: APIRequestContext, stack: StackInfo): Promise<ApiClient> {
  let found: ApiClient | undefined;
  await expect
    .poll(
      async () => {
        const body = (await (await request.get(`${stack.base_url}/api/v1/clients`)).json()) as {
          items: ApiClient[];
        };
        found = stack.client_id ? body.items.find((c) => c.client_id === stack.client_id) : body.items[0];
        return found?.client_id ?? null;
      },
      { message: 'the agent never registered', timeout: 30_000 }
    )
    .not.toBeNull();
  return found!;
}

export const test = base.extend<{ stack: StackInfo }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright fixtures take their dependencies first
  stack: async ({}, use) => {
    await use(readStack());
  },
  baseURL: async ({ stack }, use) => {
    await use(stack.base_url);
  }
});

export { expect };
