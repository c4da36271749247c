import { sveltekit } from '@sveltejs/kit/vite';
import tailwindcss from '@tailwindcss/vite';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

// `pnpm dev` proxies the API to a local `obt serve`; OBT_API_URL points it elsewhere.
const apiTarget = process.env.OBT_API_URL ?? 'http://127.0.0.1:8881';

export default defineConfig({
  // svelteTesting resolves Svelte's browser build and cleans up the DOM between tests.
  plugins: [tailwindcss(), sveltekit(), ...(process.env.VITEST ? [svelteTesting()] : [])],
  server: {
    proxy: { '/api': { target: apiTarget } }
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['./vitest-setup.ts'],
    restoreMocks: true
  }
});
