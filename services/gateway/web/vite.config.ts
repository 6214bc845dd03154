/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The gateway serves dist/ at "/"; during `npm run dev` the API calls go to a gateway on 18080.
export default defineConfig({
  plugins: [react()],
  server: {
    host: "127.0.0.1",
    proxy: { "/api": "http://127.0.0.1:18080", "/hooks": "http://127.0.0.1:18080" },
  },
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
    // A rendering test takes well under a second alone, but several at load 30 on two shared cores
    // passed the default 5 s; a slow machine should not fail a test whose answer is right.
    testTimeout: 30_000,
  },
});
