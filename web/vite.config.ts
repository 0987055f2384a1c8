/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The app is served by Vigil at "/"; `npm run dev` proxies the API to a running `vigil up`.
export default defineConfig({
  plugins: [react()],
  // The admin console (react-admin, Material UI) is one lazily loaded chunk of ~790 kB (~250 kB
  // gzip) that only admins download; the warning threshold sits just above it.
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, target: "es2022", chunkSizeWarningLimit: 850 },
  server: {
    proxy: {
      "/v1": { target: "http://127.0.0.1:8000", ws: true },
      "/openapi.json": "http://127.0.0.1:8000",
    },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
