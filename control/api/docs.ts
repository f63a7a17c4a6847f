/**
 * `/docs`: Swagger UI for `/openapi.json`, served entirely from the binary (its assets are text
 * imports of the pinned `swagger-ui-dist` package), so the page works with no network.
 */
import { Hono } from "hono";
import swaggerJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import type { AppEnv } from "./deps.ts";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>qarax API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

// validatorUrl null: the default badge would call an online validator.
const INIT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
  tryItOutEnabled: true,
});
`;

/** The docs routes (not part of the OpenAPI document: they are its viewer). */
export function docsRouter() {
  const app = new Hono<AppEnv>();
  const cache = { "Cache-Control": "public, max-age=86400" };
  app.get("/docs", (c) => c.html(PAGE));
  app.get("/docs/", (c) => c.redirect("/docs"));
  app.get(
    "/docs/swagger-ui.css",
    (c) => c.body(swaggerCss, 200, { ...cache, "Content-Type": "text/css; charset=utf-8" }),
  );
  app.get(
    "/docs/swagger-ui-bundle.js",
    (c) => c.body(swaggerJs, 200, { ...cache, "Content-Type": "text/javascript; charset=utf-8" }),
  );
  app.get(
    "/docs/init.js",
    (c) => c.body(INIT, 200, { "Content-Type": "text/javascript; charset=utf-8" }),
  );
  return app;
}
