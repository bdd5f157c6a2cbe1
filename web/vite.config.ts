/** Multi-page build: every page is one small HTML file and one script, served by the API Server from web/dist. */
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

const page = (name: string) => resolve(import.meta.dirname, `${name}.html`);

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    // The IVS Web Broadcast SDK (~710 kB) is a chunk of its own, loaded by /watch only for IVS stages.
    chunkSizeWarningLimit: 800,
    rollupOptions: { input: { index: page('index'), broadcast: page('broadcast'), watch: page('watch'), dashboard: page('dashboard') } },
  },
  // `npm run dev -w web`: the pages on Vite's dev server, the API on the API Server.
  server: { proxy: { '/api': 'http://127.0.0.1:3000' } },
});
