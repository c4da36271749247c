import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  preprocess: vitePreprocess(),
  kit: {
    // The Python server serves the built single-page app from the obt package.
    adapter: adapter({
      pages: '../obt/static',
      assets: '../obt/static',
      fallback: 'index.html',
      strict: false
    })
  }
};

export default config;
