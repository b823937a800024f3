"use strict";
// The API viewer: Swagger UI served by the app itself (/vendor/swagger-ui, from the
// swagger-ui-bundle-v2 wheel), started here rather than by an inline script so the
// page keeps the app's strict CSP ('self' only). Works offline.
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
