// The Alerts page on the stack's real server: without the admin token it says why; with it,
// a rule made in the form is listed, "Test send" shows each target's answer (a webhook to a
// closed port: the server's error, not a silent success), and Delete takes the rule off.
import { agentClient, expect, test, type StackInfo } from './stack';

function adminToken(stack: StackInfo): string {
  const token = (stack as StackInfo & { admin_token?: string }).admin_token;
  expect(token, 'the stack prints its admin token').toBeTruthy();
  return token!;
}

test('without the admin token the Alerts page says why and asks for it', async ({ page }) => {
  await page.goto('/alerts');
  await expect(page.getByRole('heading', { level: 1, name: 'Alerts' })).toBeVisible();
  await expect(page.getByText('Alert rules and alerts need the admin token')).toBeVisible();
  await expect(page.getByRole('form', { name: 'Admin token' })).toBeVisible();
});

test('a rule made in the form is listed, test-sent and deleted', async ({ page, stack }, testInfo) => {
  const name = `Hosts down ${testInfo.workerIndex}-${testInfo.retry}-${Date.now()}`;
  await page.goto('/');
  await page.getByRole('link', { name: 'Alerts' }).click();
  const tokenForm = page.getByRole('form', { name: 'Admin token' });
  await tokenForm.getByLabel('Admin token').fill(adminToken(stack));
  await tokenForm.getByRole('button', { name: 'Use token' }).click();
  await expect(page.getByRole('heading', { name: /Firing now/ })).toBeVisible();

  await page.getByRole('button', { name: 'New rule' }).click();
  const form = page.getByRole('form', { name: 'Alert rule' });
  await form.getByLabel('Name').fill(name);
  await form.getByRole('checkbox', { name: 'stopped' }).check();
  await form.getByLabel('For at least (seconds)').fill('30');
  await form.getByRole('button', { name: 'Add webhook' }).click();
  await form.getByLabel('Webhook URL').fill('http://127.0.0.1:9/obt-test');
  // A new webhook needs its secret: the form says so before anything is sent.
  await form.getByRole('button', { name: 'Create rule' }).click();
  await expect(form.getByText(/needs a secret/)).toBeVisible();
  await form.getByLabel('Secret').fill('e2e-signing-key');
  await form.getByRole('button', { name: 'Create rule' }).click();
  await expect(form).toBeHidden();

  const card = page.getByTestId('alert-rule').filter({ hasText: name });
  await expect(card).toBeVisible();
  await expect(card).toContainText('Status offline or stopped for 30 s');
  await expect(card).toContainText('webhook http://127.0.0.1:9/obt-test (signed)');

  await card.getByRole('button', { name: `Test send ${name}` }).click();
  await expect(card.getByTestId('test-send-result')).toContainText('Failed: webhook', { timeout: 30_000 });

  await card.getByRole('button', { name: `Delete ${name}`, exact: true }).click();
  await card.getByRole('button', { name: `Delete ${name} for good` }).click();
  await expect(page.getByTestId('alert-rule').filter({ hasText: name })).toHaveCount(0);
});

test('a firing alert shows under "Firing now" with its failed delivery, and in the history', async ({
  page,
  request,
  stack
}) => {
  const token = adminToken(stack);
  const client = await agentClient(request, stack);
  const made = await request.post(`${stack.base_url}/api/v1/alerts/rules`, {
    headers: { authorization: `Bearer ${token}` },
    data: {
      name: 'Model never installed',
      scope: { client_ids: [client.client_id] },
      condition: { kind: 'model_missing', model: 'no-such-model:1b', for_s: 0 },
      notify: { webhooks: [{ url: 'http://127.0.0.1:9/obt-firing', secret: 'e2e' }] }
    }
  });
  expect(made.ok()).toBeTruthy();
  const rule = (await made.json()) as { id: string };
  try {
    await page.goto('/alerts');
    const tokenForm = page.getByRole('form', { name: 'Admin token' });
    await tokenForm.getByLabel('Admin token').fill(token);
    await tokenForm.getByRole('button', { name: 'Use token' }).click();
    const firing = page.getByRole('region', { name: /Firing now/ }).getByTestId('alert');
    const entry = firing.filter({ hasText: 'Model never installed' });
    // The evaluator fires within a tick; the page asks again every 10 s.
    await expect(entry).toBeVisible({ timeout: 30_000 });
    await expect(entry.getByTestId('alert-state')).toHaveText('Firing');
    await expect(entry.getByTestId('delivery').first()).toContainText('webhook', { timeout: 30_000 });
    await expect(entry.getByTestId('delivery').first()).toContainText(/Failed|Pending/);
    await expect(
      page
        .getByRole('region', { name: 'History' })
        .getByTestId('alert')
        .filter({ hasText: 'Model never installed' })
    ).toBeVisible();
  } finally {
    await request.delete(`${stack.base_url}/api/v1/alerts/rules/${rule.id}`, {
      headers: { authorization: `Bearer ${token}` }
    });
  }
});
