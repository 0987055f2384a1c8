// Copies the Swagger UI and ReDoc bundles from npm into dist/api-docs, so Vigil serves
// /docs and /redoc itself (no CDN) with no inline script.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "..", "node_modules");
const out = join(here, "..", "dist", "api-docs");
mkdirSync(out, { recursive: true });
for (const [pkg, file] of [
  ["swagger-ui-dist", "swagger-ui-bundle.js"],
  ["swagger-ui-dist", "swagger-ui.css"],
  ["redoc/bundles", "redoc.standalone.js"],
]) {
  copyFileSync(join(modules, pkg, file), join(out, file));
}
// ReDoc's footer logo is its one remote file: drop it (nothing leaves Vigil's origin).
const redoc = join(out, "redoc.standalone.js");
writeFileSync(redoc, readFileSync(redoc, "utf8").replaceAll("https://cdn.redoc.ly/redoc/logo-mini.svg", ""));
writeFileSync(
  join(out, "swagger-init.js"),
  'window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });\n',
);

// Pre-compressed copies: Vigil answers .js/.css with the .gz beside them when the browser
// takes gzip (no compression work per request, none in the API's path).
for (const dir of [join(here, "..", "dist", "assets"), out]) {
  for (const name of readdirSync(dir)) {
    if (/\.(js|css)$/.test(name)) {
      writeFileSync(join(dir, `${name}.gz`), gzipSync(readFileSync(join(dir, name)), { level: 9 }));
    }
  }
}
