// Browser tests against a real stack (fake Ollama + OBT server + agent), started by
// e2e/global-setup.ts through `python -m tests.e2e.stack`. Chromium comes from Debian.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  globalSetup: './e2e/global-setup.ts',
  // The specs share one stack and walk one agent through its life: run them in order.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    // datetime-local inputs are local time: pin the zone so "state as of" is deterministic.
    timezoneId: 'UTC',
    launchOptions: {
      executablePath: process.env.OBT_E2E_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  }
});
