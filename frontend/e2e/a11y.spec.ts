// Every view in pages.ts passes axe-core's WCAG 2.0/2.1 A and AA rules in the dark and the
// light theme, with the stack's agent online and its data on the page. It runs first (file
// order), while the agent is alive.
import { readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectAccessible } from './axe';
import { DASHBOARD_VIEWS, viewContext } from './pages';
import { expect, test } from './stack';

const routesDir = join(dirname(fileURLToPath(import.meta.url)), '../src/routes');

/** SvelteKit route ids of every page under src/routes ('/', '/clients/[id]', ...), plus '+error'. */
function routeIds(dir = routesDir): string[] {
  const ids: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) ids.push(...routeIds(path));
    else if (entry.name === '+page.svelte') {
      const folder = relative(routesDir, dir).split(sep).join('/');
      // Route groups such as (admin) do not appear in the URL or the route id's path.
      ids.push(`/${folder}`.replace(/\/\([^)]+\)/g, '') || '/');
    } else if (entry.name === '+error.svelte' && dir === routesDir) ids.push('+error');
  }
  return ids;
}

test('every page of the dashboard is in the accessibility check', () => {
  const checked = new Set(DASHBOARD_VIEWS.map((view) => view.route));
  const missing = routeIds().filter((id) => !checked.has(id));
  expect(missing, `add these routes to DASHBOARD_VIEWS in e2e/pages.ts: ${missing.join(', ')}`).toEqual([]);
  const names = DASHBOARD_VIEWS.map((view) => view.name);
  expect(new Set(names).size, 'view names must be unique').toBe(names.length);
});

for (const view of DASHBOARD_VIEWS) {
  test(`${view.name} (${view.route}) passes axe WCAG A/AA in dark and light`, async ({
    page,
    request,
    stack
  }, testInfo) => {
    // Three axe runs over a page of 100 table rows take a minute or more on a busy machine.
    test.slow();
    const context = await viewContext(request, stack);
    await page.goto(view.path(context));
    await view.ready(page, context);
    await expectAccessible(page, { testInfo });
  });
}
