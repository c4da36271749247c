// Fleet operations from the dashboard: the admin token asked for once, a pull chosen by
// checkbox on the models page, its progress bar filling to done, then "Remove" with its
// confirmation, on the stack's real server, agent and fake Ollama.
// The specs share one stack and run in file order: this file's name sorts before
// lifecycle.spec.ts, whose last test kills the agent a pull needs.
import { expectAccessible } from './axe';
import { agentClient, controlUrl, expect, test, type StackInfo } from './stack';

const MODEL = 'phi4:14b'; // in the fake's library, not installed on the stack's agent

function adminToken(stack: StackInfo): string {
  const token = (stack as StackInfo & { admin_token?: string }).admin_token;
  expect(token, 'the stack prints its admin token').toBeTruthy();
  return token!;
}

test.afterEach(async ({ request, stack }) => {
  await request.post(controlUrl(stack, '/pull'), { data: {} });
});

test('without the admin token the controls are disabled and say why', async ({ page }) => {
  await page.goto('/models');
  await expect(page.getByRole('button', { name: 'Pull model' })).toBeDisabled();
  await expect(page.getByText('Needs the admin token').first()).toBeVisible();
  await expect(page.getByRole('button', { name: /^Remove / }).first()).toBeDisabled();
});

test('a pull from the models page shows its progress bar until done, then Remove takes it off', async ({
  page,
  request,
  stack
}) => {
  const client = await agentClient(request, stack);
  // Slow enough to watch: 12 progress lines 0.25 s apart on the weights layer.
  const plan = await request.post(controlUrl(stack, '/pull'), { data: { step_s: 0.25, steps: 12 } });
  expect(plan.ok()).toBeTruthy();

  await page.goto('/models');
  const tokenForm = page.getByRole('form', { name: 'Admin token' });
  await tokenForm.getByLabel('Admin token').fill(adminToken(stack));
  await tokenForm.getByRole('button', { name: 'Use token' }).click();
  await expect(page.getByTestId('admin-token-state')).toBeVisible();

  await page.getByRole('button', { name: 'Pull model' }).click();
  const form = page.getByRole('form', { name: 'Pull model' });
  await form.getByLabel('Model name').fill(MODEL);
  await form.getByRole('checkbox', { name: client.hostname }).check();
  await form.getByRole('button', { name: 'Pull' }).click();

  const bar = page.getByRole('progressbar', { name: `${MODEL} on ${client.hostname}` });
  await expect(bar).toBeVisible({ timeout: 30_000 });
  await expect(bar).toHaveAttribute('aria-valuenow', '100', { timeout: 60_000 });
  const operation = page.getByTestId('operation').filter({ hasText: MODEL });
  await expect(operation.getByTestId('target-state')).toHaveText('Succeeded');
  // The agent's model report comes before its result: the matrix shows the model.
  const row = page.getByRole('row', { name: new RegExp(MODEL.replace(/[.:]/g, '\\$&')) });
  await expect(row).toBeVisible({ timeout: 30_000 });

  // The token is kept for the tab: the Operations page lists the pull with its result.
  await page.getByRole('link', { name: 'Operations' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Operations' })).toBeVisible();
  const listed = page
    .getByTestId('operation')
    .filter({ hasText: `Pull ${MODEL}` })
    .first();
  await expect(listed.getByTestId('target-state')).toHaveText('Succeeded');
  await expectAccessible(page); // the history with its results and the token set

  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('button', { name: `Remove ${MODEL}` }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(`Remove ${MODEL}?`);
  await expectAccessible(page); // the confirmation dialog
  await dialog.getByRole('button', { name: 'Remove from 1 host' }).click();
  await expect(row).toHaveCount(0, { timeout: 30_000 });
});
